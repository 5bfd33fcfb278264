package cluster

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
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

// fsm adapts a store.Store to raft.FSM, and keeps the replicated member
// metadata (names and client URLs, which raft's configuration lacks). It is
// thin on purpose.
type fsm struct {
	store *store.Store
	// applied is the raft index of the last entry this FSM applied.
	applied atomic.Uint64
	// lastNow is the latest proposer time applied (unix nanos): a new
	// leader never stamps an earlier one, so time never runs backwards.
	lastNow atomic.Int64
	// clusterID is set by the first member entry (the bootstrapper's).
	clusterID atomic.Uint64

	mu      sync.Mutex
	waiters map[uint64][]chan struct{} // applied-index waiters, see waitApplied

	metaMu  sync.RWMutex
	members map[uint64]memberInfo
	removed map[uint64]bool
}

var _ raft.FSM = (*fsm)(nil)
var _ raft.ConfigurationStore = (*fsm)(nil)

func newFSM(s *store.Store) *fsm {
	return &fsm{store: s, waiters: make(map[uint64][]chan struct{}),
		members: make(map[uint64]memberInfo), removed: make(map[uint64]bool)}
}

// Apply runs one committed command. A command that does not decode means a
// corrupt log or an incompatible binary: it panics rather than diverge.
func (f *fsm) Apply(l *raft.Log) any {
	defer f.advance(l.Index)
	c, err := decodeCommand(l.Data)
	if err != nil {
		panic(fmt.Sprintf("cluster: undecodable raft entry %d: %v", l.Index, err))
	}
	if ns := c.now.UnixNano(); ns > f.lastNow.Load() {
		f.lastNow.Store(ns)
	}
	switch c.typ {
	case cmdExpire:
		return applyResult{events: f.store.DeleteExpiredKeys(c.now)}
	case cmdNoop:
		return applyResult{}
	case cmdMember:
		f.applyMember(c.member)
		return applyResult{}
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

// Snapshot captures the store and the member metadata at this point of the
// log; Persist streams them while new entries keep applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	h := snapHeader{Applied: f.applied.Load(), LastNow: f.lastNow.Load(), ClusterID: f.clusterID.Load()}
	f.metaMu.RLock()
	for id, m := range f.members {
		h.Members = append(h.Members, memberCmd{ID: id, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs})
	}
	for id := range f.removed {
		h.Removed = append(h.Removed, id)
	}
	f.metaMu.RUnlock()
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{header: hb, snap: f.store.Snapshot()}, nil
}

// snapMagic starts a Cairn FSM snapshot: then a uint32 length and the
// snapHeader JSON, then the store's own snapshot stream.
const snapMagic = "CAIRNFS1"

type snapHeader struct {
	Applied   uint64      `json:"applied"`
	LastNow   int64       `json:"lastNow"`
	ClusterID uint64      `json:"clusterID"`
	Members   []memberCmd `json:"members"`
	Removed   []uint64    `json:"removed,omitempty"`
}

// Restore replaces the store and the member metadata with a snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReader(rc)
	var pre [len(snapMagic) + 4]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil || string(pre[:len(snapMagic)]) != snapMagic {
		return fmt.Errorf("cluster: restore snapshot: not a Cairn snapshot (bad header)")
	}
	hl := binary.BigEndian.Uint32(pre[len(snapMagic):])
	if hl > maxFrame {
		return fmt.Errorf("cluster: restore snapshot: header of %d bytes is too large", hl)
	}
	hb := make([]byte, hl)
	if _, err := io.ReadFull(br, hb); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	var h snapHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return fmt.Errorf("cluster: restore snapshot header: %w", err)
	}
	if err := f.store.Restore(br); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	f.metaMu.Lock()
	f.members = make(map[uint64]memberInfo, len(h.Members))
	for _, m := range h.Members {
		f.members[m.ID] = memberInfo{Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs}
	}
	f.removed = make(map[uint64]bool, len(h.Removed))
	for _, id := range h.Removed {
		f.removed[id] = true
	}
	f.metaMu.Unlock()
	f.lastNow.Store(h.LastNow)
	f.clusterID.Store(h.ClusterID)
	f.advance(h.Applied)
	return nil
}

type fsmSnapshot struct {
	header []byte
	snap   *store.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	pre := make([]byte, 0, len(snapMagic)+4+len(s.header))
	pre = append(pre, snapMagic...)
	pre = binary.BigEndian.AppendUint32(pre, uint32(len(s.header)))
	pre = append(pre, s.header...)
	if _, err := sink.Write(pre); err != nil {
		sink.Cancel()
		return err
	}
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
