package cluster

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/store"
)

// applyResult is what the FSM returns for a command: the event or the store
// error. Callers read it from ApplyFuture.Response.
type applyResult struct {
	event  *store.Event
	err    error
	events []*store.Event // expiry
	batch  []applyResult  // cmdBatch: one result per request, in order
}

// fsm adapts a store.Store to raft.FSM, and keeps the replicated member
// metadata (names and client URLs, which raft's configuration lacks). It is
// thin on purpose.
type fsm struct {
	// waitDurable waits until an entry is on this member's disk
	// (logCache.waitDurable); set before raft starts.
	waitDurable func(index uint64) error

	store *store.Store
	// applied is the raft index of the last entry this FSM applied.
	applied atomic.Uint64
	// lastNow is the latest proposer time applied (unix nanos): a new
	// leader never stamps an earlier one, so time never runs backwards.
	lastNow atomic.Int64
	// clusterID is set by the first member entry (the bootstrapper's).
	clusterID atomic.Uint64

	mu      sync.Mutex
	waiters []indexWaiter // applied-index waiters by index, see appliedCh

	// applyMu serializes raft's applies and restores with the replay of
	// the local log at start (Node.replayLocal).
	applyMu sync.Mutex
	// mark, when set, records the last entry applied (appliedFile).
	mark func(appliedMark)

	metaMu  sync.RWMutex
	members map[uint64]memberInfo
	removed map[uint64]bool

	// fault stops the FSM: once raised, nothing more is applied.
	fault *disk.Fault
	// sawFramed is set by the first checksummed entry applied: an
	// unframed one after it is corrupt (see disk.CheckEntry).
	sawFramed bool
}

// indexWaiter is a channel closed once the FSM applies index: every
// waiter for one index shares it.
type indexWaiter struct {
	index uint64
	ch    chan struct{}
}

var _ raft.BatchingFSM = (*fsm)(nil)
var _ raft.ConfigurationStore = (*fsm)(nil)

func newFSM(s *store.Store, flt *disk.Fault) *fsm {
	if flt == nil {
		flt = disk.NewFault()
	}
	return &fsm{store: s,
		members: make(map[uint64]memberInfo), removed: make(map[uint64]bool), fault: flt}
}

// Apply runs one committed command (raft calls ApplyBatch; restores and
// tests call this).
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch runs a batch of committed entries (commands and
// configurations, in log order) and then moves the applied index once, to
// the last entry it applied: waiters wake once per batch.
//
// An entry at or below the applied index is skipped: the start replayed it
// from the local log already (Node.replayLocal), and raft delivers it again.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	// Only what is on this member's disk (logCache: the leader writes
	// behind replication).
	if len(logs) > 0 && f.waitDurable != nil {
		if err := f.waitDurable(logs[len(logs)-1].Index); err != nil {
			for i := range out {
				out[i] = applyResult{err: err}
			}
			return out
		}
	}
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	var last, lastTerm uint64
	for i, l := range logs {
		if l.Index != 0 && l.Index <= f.applied.Load() {
			out[i] = applyResult{}
			continue
		}
		if l.Type != raft.LogCommand {
			if f.fault.Err() == nil {
				last, lastTerm = l.Index, l.Term // a configuration: only the applied index moves
			}
			continue
		}
		res, ok := f.apply(l)
		out[i] = res
		if ok {
			last, lastTerm = l.Index, l.Term
		}
	}
	if last != 0 {
		f.advance(last)
		if f.mark != nil {
			f.mark(appliedMark{index: last, term: lastTerm})
		}
	}
	return out
}

// apply runs one command; ok is false when it was not applied and the
// applied index must not move past it. An entry that fails its checksum
// is corrupt: it is not applied, the fault is raised (the node stops, see
// Node.Err), and neither it nor any later entry moves the applied index. A
// command that passes its checksum but does not decode is one this binary
// does not understand: it panics rather than diverge.
func (f *fsm) apply(l *raft.Log) (res any, ok bool) {
	if err := f.fault.Err(); err != nil {
		return applyResult{err: err}, false
	}
	body, framed, err := disk.CheckEntry(l, f.sawFramed)
	if err != nil {
		f.fault.Raise(err)
		return applyResult{err: err}, false
	}
	f.sawFramed = framed
	c, err := decodeBody(body)
	if err != nil {
		panic(fmt.Sprintf("cluster: undecodable raft entry %d: %v", l.Index, err))
	}
	if ns := c.now.UnixNano(); ns > f.lastNow.Load() {
		f.lastNow.Store(ns)
	}
	switch c.typ {
	case cmdExpire:
		return applyResult{events: f.store.DeleteExpiredKeys(c.now)}, true
	case cmdNoop:
		return applyResult{}, true
	case cmdMember:
		f.applyMember(c.member)
		return applyResult{}, true
	case cmdBatch:
		// Each request exactly as if it were an entry of its own: in
		// order, at the batch's time, a failure its own.
		out := make([]applyResult, len(c.reqs))
		for i, r := range c.reqs {
			ev, err := f.store.Apply(r, c.now)
			out[i] = applyResult{event: ev, err: err}
		}
		return applyResult{batch: out}, true
	default:
		ev, err := f.store.Apply(c.req, c.now)
		return applyResult{event: ev, err: err}, true
	}
}

// StoreConfiguration is called for committed configuration entries when
// raft does not batch; it only moves the applied index.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) { f.advance(index) }

// advance moves the applied index to index and wakes the waiters it
// reaches.
func (f *fsm) advance(index uint64) {
	if index <= f.applied.Load() {
		return
	}
	f.mu.Lock()
	f.applied.Store(index)
	k := 0
	for k < len(f.waiters) && f.waiters[k].index <= index {
		close(f.waiters[k].ch)
		k++
	}
	if k > 0 {
		f.waiters = append(f.waiters[:0], f.waiters[k:]...)
	}
	f.mu.Unlock()
}

// closedCh is the answer of appliedCh for an index already applied.
var closedCh = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// appliedCh returns a channel closed once the FSM has applied index.
func (f *fsm) appliedCh(index uint64) <-chan struct{} {
	if f.applied.Load() >= index {
		return closedCh
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied.Load() >= index {
		return closedCh
	}
	i, found := slices.BinarySearchFunc(f.waiters, index, func(w indexWaiter, x uint64) int { return cmp.Compare(w.index, x) })
	if found {
		return f.waiters[i].ch
	}
	ch := make(chan struct{})
	f.waiters = slices.Insert(f.waiters, i, indexWaiter{index: index, ch: ch})
	return ch
}

// Snapshot captures the store and the member metadata at this point of the
// log; Persist streams them while new entries keep applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.fault.Err(); err != nil {
		return nil, err
	}
	h, snap := f.capture()
	return &fsmSnapshot{header: h, snap: snap}, nil
}

// Restore replaces the store and the member metadata with a snapshot
// (format in snapshot.go).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	br := bufio.NewReader(rc)
	h, _, err := decodeSnapHeader(br)
	if err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	if err := f.store.Restore(br); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	f.restoreHeader(h)
	return nil
}

// fsmSnapshot is a captured FSM state, written out by Persist (raft) or
// Backup.WriteTo, any number of times.
type fsmSnapshot struct {
	header snapHeader
	snap   *store.Snapshot
}

// Persist writes the FSM snapshot stream to sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// WriteTo writes the FSM snapshot stream: the header, then the store's.
func (s *fsmSnapshot) WriteTo(w io.Writer) (int64, error) {
	pre, err := encodeSnapHeader(s.header)
	if err != nil {
		return 0, err
	}
	k, err := w.Write(pre)
	if err != nil {
		return int64(k), err
	}
	n, err := s.snap.WriteTo(w)
	return int64(k) + n, err
}

func (s *fsmSnapshot) Release() {}
