package cluster

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/store"
)

// applyResult is what the FSM returns for a command: the event or the store
// error. Callers read it from ApplyFuture.Response.
type applyResult struct {
	event  *store.Event
	err    error
	events []*store.Event // expiry
}

// fsm adapts a store.Store to raft.FSM. It is thin on purpose.
type fsm struct {
	store *store.Store
	// applied is the raft index of the last entry this FSM applied.
	applied atomic.Uint64

	mu      sync.Mutex
	waiters map[uint64][]chan struct{} // applied-index waiters, see waitApplied
}

var _ raft.FSM = (*fsm)(nil)
var _ raft.ConfigurationStore = (*fsm)(nil)

func newFSM(s *store.Store) *fsm {
	return &fsm{store: s, waiters: make(map[uint64][]chan struct{})}
}

// Apply runs one committed command. A command that does not decode means a
// corrupt log or an incompatible binary: it panics rather than diverge.
func (f *fsm) Apply(l *raft.Log) any {
	defer f.advance(l.Index)
	c, err := decodeCommand(l.Data)
	if err != nil {
		panic(fmt.Sprintf("cluster: undecodable raft entry %d: %v", l.Index, err))
	}
	switch c.typ {
	case cmdExpire:
		return applyResult{events: f.store.DeleteExpiredKeys(c.now)}
	default:
		ev, err := f.store.Apply(c.req, c.now)
		return applyResult{event: ev, err: err}
	}
}

// StoreConfiguration is called for committed configuration entries; it only
// moves the applied index.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) { f.advance(index) }

func (f *fsm) advance(index uint64) {
	if index <= f.applied.Load() {
		return
	}
	f.applied.Store(index)
	f.mu.Lock()
	for i, ws := range f.waiters {
		if i <= index {
			for _, w := range ws {
				close(w)
			}
			delete(f.waiters, i)
		}
	}
	f.mu.Unlock()
}

// appliedCh returns a channel closed once the FSM has applied index.
func (f *fsm) appliedCh(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied.Load() >= index {
		close(ch)
		return ch
	}
	f.waiters[index] = append(f.waiters[index], ch)
	return ch
}

// Snapshot captures the store at this point of the log; Persist streams it
// while new entries keep applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.store.Snapshot()}, nil
}

// Restore replaces the store with a snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	return nil
}

type fsmSnapshot struct{ snap *store.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
