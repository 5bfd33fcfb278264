package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// countingStore counts the reads that reach the store and fails writes
// with failWith when set.
type countingStore struct {
	*raft.InmemStore
	reads    int
	failWith error
}

func (s *countingStore) GetLog(i uint64, l *raft.Log) error {
	s.reads++
	return s.InmemStore.GetLog(i, l)
}

func (s *countingStore) StoreLogs(logs []*raft.Log) error {
	if s.failWith != nil {
		return s.failWith
	}
	return s.InmemStore.StoreLogs(logs)
}

func entries(from, to uint64, size int) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, &raft.Log{Index: i, Term: 1, Data: make([]byte, size)})
	}
	return ls
}

func TestLogCacheServesWhatWasWritten(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s)
	if err := c.StoreLogs(entries(1, logCacheSize+10, 8)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	// The newest logCacheSize entries come from memory.
	for i := uint64(11); i <= logCacheSize+10; i++ {
		if err := c.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("GetLog(%d) = index %d, %v", i, l.Index, err)
		}
	}
	if s.reads != 0 {
		t.Fatalf("%d reads reached the store for cached entries", s.reads)
	}
	// Older ones were overwritten in the ring: read from the store.
	if err := c.GetLog(5, &l); err != nil || l.Index != 5 || s.reads != 1 {
		t.Fatalf("GetLog(5) = index %d, %v, store reads %d; want 5 from the store", l.Index, err, s.reads)
	}
}

func TestLogCacheSkipsLargeEntries(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s)
	if err := c.StoreLogs(entries(1, 1, cacheEntryMax+1)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(1, &l); err != nil || len(l.Data) != cacheEntryMax+1 || s.reads != 1 {
		t.Fatalf("GetLog(1): %d bytes, %v, store reads %d; want the entry from the store", len(l.Data), err, s.reads)
	}
}

func TestLogCacheForgetsDeletedEntries(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s)
	if err := c.StoreLogs(entries(1, 10, 8)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRange(6, 10); err != nil { // a conflicting tail
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(8, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(8) after deleting 6-10: index %d, %v; want ErrLogNotFound", l.Index, err)
	}
}

func TestLogCacheKeepsTheStoresError(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore(), failWith: fmt.Errorf("write raft.db: %w", syscall.ENOSPC)}
	c := newLogCache(s)
	err := c.StoreLogs(entries(1, 1, 8))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("StoreLogs error %v does not match ENOSPC: the disk-full state would not see it", err)
	}
	var l raft.Log
	if err := c.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(1) after a failed write: %v; want ErrLogNotFound (nothing cached)", err)
	}
}

// gateStore holds every write while held is set, until release is closed,
// and records the order of the writes that got through.
type gateStore struct {
	raft.LogStore
	held    atomic.Bool
	entered chan struct{} // a write reached the closed gate
	release chan struct{}
	failErr atomic.Pointer[error]

	mu     sync.Mutex
	writes [][2]uint64 // first and last index of each write
}

func newGateStore() *gateStore {
	return &gateStore{LogStore: raft.NewInmemStore(), entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gateStore) StoreLogs(ls []*raft.Log) error {
	if g.held.Load() {
		g.entered <- struct{}{}
		<-g.release
	}
	if p := g.failErr.Load(); p != nil {
		return *p
	}
	g.mu.Lock()
	g.writes = append(g.writes, [2]uint64{ls[0].Index, ls[len(ls)-1].Index})
	g.mu.Unlock()
	return g.LogStore.StoreLogs(ls)
}

func (g *gateStore) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

// newTestCache is a log cache on g whose caller leads while leader is set.
func newTestCache(t *testing.T, g *gateStore, leader *atomic.Bool) (*logCache, *atomic.Pointer[error]) {
	c := newLogCache(g)
	var failed atomic.Pointer[error]
	c.startWriter(leader.Load, func() bool { return true }, func(err error) { failed.Store(&err) })
	t.Cleanup(func() {
		if g.held.Swap(false) {
			close(g.release)
		}
		c.close()
	})
	return c, &failed
}

// done runs f on a goroutine and returns a channel closed when it returned.
func done(f func()) chan struct{} {
	ch := make(chan struct{})
	go func() { defer close(ch); f() }()
	return ch
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestLogCacheLeaderWritesBehind(t *testing.T) {
	g := newGateStore()
	var leader atomic.Bool
	leader.Store(true)
	c, failed := newTestCache(t, g, &leader)
	g.held.Store(true)

	// The leader's StoreLogs returns while its disk write is held.
	if err := c.StoreLogs(entries(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	var l raft.Log
	if err := c.GetLog(2, &l); err != nil || l.Index != 2 {
		t.Fatalf("GetLog(2) while the write is held: %v %v", l.Index, err)
	}
	if d := c.durable.Load(); d != 0 {
		t.Fatalf("durable %d before the write reached the disk", d)
	}
	durable := done(func() {
		if err := c.waitDurable(3); err != nil {
			t.Error(err)
		}
	})
	if isClosed(durable) {
		t.Fatal("waitDurable(3) returned while the write was held")
	}
	g.held.Store(false)
	close(g.release)
	<-durable
	if got, _ := g.LogStore.LastIndex(); got != 3 {
		t.Fatalf("disk's last index %d, want 3", got)
	}
	if failed.Load() != nil {
		t.Fatalf("failed: %v", *failed.Load())
	}
}

func TestLogCacheFollowerWritesSynchronously(t *testing.T) {
	g := newGateStore()
	var leader atomic.Bool // a follower
	c, _ := newTestCache(t, g, &leader)
	g.held.Store(true)
	stored := done(func() {
		if err := c.StoreLogs(entries(1, 2, 1)); err != nil {
			t.Error(err)
		}
	})
	<-g.entered
	if isClosed(stored) {
		t.Fatal("a follower's StoreLogs returned before its write reached the disk")
	}
	g.held.Store(false)
	close(g.release)
	<-stored
	if d := c.durable.Load(); d != 2 {
		t.Fatalf("durable %d after a synchronous write of 1-2", d)
	}
}

// A member that stops leading writes what it queued before anything else.
func TestLogCacheSyncWriteFollowsQueued(t *testing.T) {
	g := newGateStore()
	var leader atomic.Bool
	leader.Store(true)
	c, _ := newTestCache(t, g, &leader)
	g.held.Store(true)
	if err := c.StoreLogs(entries(1, 2, 1)); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	leader.Store(false)
	stored := done(func() {
		if err := c.StoreLogs(entries(3, 3, 1)); err != nil {
			t.Error(err)
		}
	})
	if isClosed(stored) {
		t.Fatal("a synchronous write passed the queued one")
	}
	g.held.Store(false)
	close(g.release)
	<-stored
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.writes) != 2 || g.writes[0] != [2]uint64{1, 2} || g.writes[1] != [2]uint64{3, 3} {
		t.Fatalf("writes %v, want [1 2] then [3 3]", g.writes)
	}
}

// A tail deleted on a conflict takes the durable index back: entries
// written again at those indexes are not durable until they are written.
func TestLogCacheTailDeleteLowersDurable(t *testing.T) {
	g := newGateStore()
	var leader atomic.Bool
	c, _ := newTestCache(t, g, &leader)
	if err := c.StoreLogs(entries(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRange(4, 5); err != nil {
		t.Fatal(err)
	}
	if d := c.durable.Load(); d != 3 {
		t.Fatalf("durable %d after deleting 4-5, want 3", d)
	}
	leader.Store(true)
	g.held.Store(true)
	if err := c.StoreLogs(entries(4, 5, 1)); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	durable := done(func() { c.waitDurable(5) })
	if isClosed(durable) {
		t.Fatal("entry 5, written again and held, counted as durable")
	}
	g.held.Store(false)
	close(g.release)
	<-durable
	// A head deleted after a snapshot leaves it.
	if err := c.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if d := c.durable.Load(); d != 5 {
		t.Fatalf("durable %d after deleting the head 1-2, want 5", d)
	}
}

func TestLogCacheWriteBehindFailureStopsNode(t *testing.T) {
	g := newGateStore()
	eio := errors.New("write raft.wal: input/output error")
	g.failErr.Store(&eio)
	var leader atomic.Bool
	leader.Store(true)
	c, failed := newTestCache(t, g, &leader)
	if err := c.StoreLogs(entries(1, 2, 1)); err != nil {
		t.Fatal(err)
	}
	err := c.waitDurable(2)
	if err == nil || !strings.Contains(err.Error(), "entries 1 to 2") || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("waitDurable after a failed write: %v", err)
	}
	if p := failed.Load(); p == nil || *p != err {
		t.Fatalf("the node was not stopped with the error: %v", p)
	}
	if err := c.StoreLogs(entries(3, 3, 1)); err == nil {
		t.Fatal("StoreLogs after a failed write behind succeeded")
	}
	leader.Store(false)
	if err := c.StoreLogs(entries(3, 3, 1)); err == nil {
		t.Fatal("a synchronous StoreLogs after a failed write behind succeeded")
	}
	if _, err := c.LastIndex(); err == nil {
		t.Fatal("LastIndex after a failed write behind succeeded")
	}
}

func TestLogCacheWithoutRoomWritesSynchronously(t *testing.T) {
	g := newGateStore()
	c := newLogCache(g)
	c.startWriter(func() bool { return true }, func() bool { return false }, func(error) {})
	defer c.close()
	g.held.Store(true)
	stored := done(func() { c.StoreLogs(entries(1, 1, 1)) })
	<-g.entered
	if isClosed(stored) {
		t.Fatal("a leader without room returned before its write reached the disk")
	}
	g.held.Store(false)
	close(g.release)
	<-stored
}

// recordingTransport records the commit index of the AppendEntries sent.
type recordingTransport struct {
	raft.Transport
	commits []uint64
}

func (r *recordingTransport) AppendEntries(_ raft.ServerID, _ raft.ServerAddress, args *raft.AppendEntriesRequest, _ *raft.AppendEntriesResponse) error {
	r.commits = append(r.commits, args.LeaderCommitIndex)
	return nil
}

func (r *recordingTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return recordingPipeline{r}, nil
}

type recordingPipeline struct{ r *recordingTransport }

func (p recordingPipeline) AppendEntries(args *raft.AppendEntriesRequest, _ *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	p.r.commits = append(p.r.commits, args.LeaderCommitIndex)
	return nil, nil
}
func (recordingPipeline) Consumer() <-chan raft.AppendFuture { return nil }
func (recordingPipeline) Close() error                       { return nil }

func TestDurableTransportCapsCommitIndex(t *testing.T) {
	rec := &recordingTransport{}
	var durable, capped atomic.Uint64
	durable.Store(5)
	tr := durableTransport{rec, &durable, &capped}
	tr.AppendEntries("f", "f:1", &raft.AppendEntriesRequest{LeaderCommitIndex: 9}, &raft.AppendEntriesResponse{})
	tr.AppendEntries("f", "f:1", &raft.AppendEntriesRequest{LeaderCommitIndex: 3}, &raft.AppendEntriesResponse{})
	p, err := tr.AppendEntriesPipeline("f", "f:1")
	if err != nil {
		t.Fatal(err)
	}
	p.AppendEntries(&raft.AppendEntriesRequest{LeaderCommitIndex: 7}, &raft.AppendEntriesResponse{})
	if want := []uint64{5, 3, 5}; len(rec.commits) != 3 || rec.commits[0] != want[0] || rec.commits[1] != want[1] || rec.commits[2] != want[2] {
		t.Fatalf("commit indexes sent %v, want %v", rec.commits, want)
	}
	if c := capped.Load(); c != 2 {
		t.Fatalf("%d commit indexes counted as capped, want 2", c)
	}
	if _, ok := raft.Transport(tr).(raft.WithPreVote); !ok {
		t.Fatal("the wrapped transport lost pre-vote")
	}
}

// On a 3-member cluster, a write's entry reaches the followers while the
// leader's own disk write is held; until that write is done no member
// applies it and the client has no answer; then all do.
// gatedCluster starts 3 members whose raft logs each go through a
// gateStore, and returns them with the index of the leader.
func gatedCluster(t *testing.T) ([]*Node, []*gateStore, int) {
	hub := NewInmemHub()
	gates := make([]*gateStore, 3)
	nodes := make([]*Node, 3)
	addr := func(i int) string { return "10.0.1." + itoa(i+1) + ":7001" }
	for i := range nodes {
		gate := &gateStore{entered: make(chan struct{}, 1024), release: make(chan struct{})}
		gates[i] = gate
		cfg := Config{Name: "n" + itoa(i+1), DataDir: t.TempDir(), PeerAddr: addr(i), Network: hub.Network(addr(i)),
			Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("n", i),
			ElectionTimeout: clusterElection, HeartbeatInterval: 50 * time.Millisecond,
			diskHooks: &diskHooks{wrap: func(l raft.LogStore, s raft.StableStore) (raft.LogStore, raft.StableStore) {
				gate.LogStore = l
				return gate, s
			}}}
		if i > 0 {
			cfg.Peers = []string{addr(0)}
		}
		nodes[i] = startNodeTimed(t, cfg)
	}
	leader := -1
	poll.Until(t, waitTimeout, "three members and a leader", func() bool {
		for i, n := range nodes {
			if n.isLeader() && len(n.Members()) == 3 {
				leader = i
				return true
			}
		}
		return false
	})
	return nodes, gates, leader
}

func TestLeaderWritesBehindReplication(t *testing.T) {
	nodes, gates, leader := gatedCluster(t)
	ld := nodes[leader]
	before := ld.raft.LastIndex()
	gate := gates[leader]
	gate.held.Store(true)
	t.Cleanup(func() {
		if gate.held.Swap(false) {
			close(gate.release)
		}
	})
	var propErr error
	answered := done(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, propErr = ld.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/behind", Value: "v"})
	})
	<-gate.entered
	idx := ld.raft.LastIndex()
	if idx <= before {
		t.Fatalf("the leader's last index %d did not move past %d", idx, before)
	}
	for i, n := range nodes {
		if i == leader {
			continue
		}
		poll.Until(t, waitTimeout, "the entry on follower n"+itoa(i+1)+" while the leader's write is held", func() bool {
			return n.raft.LastIndex() >= idx
		})
	}
	// Followers have acknowledged it, so raft counts it committed, and
	// tells them so within a commit timeout: twice over, with the commit
	// index lowered to what the leader has on disk.
	poll.Until(t, waitTimeout, "raft on the leader counting the entry committed", func() bool { return ld.raft.CommitIndex() >= idx })
	capped := ld.lcache.capped.Load()
	poll.Until(t, waitTimeout, "two commit indexes capped at the leader's disk (or a follower applying the entry)", func() bool {
		for _, n := range nodes {
			if n.fsm.applied.Load() >= idx {
				return true // the check below says what went wrong
			}
		}
		return ld.lcache.capped.Load() >= capped+2
	})
	if isClosed(answered) {
		t.Fatalf("the write was answered (%v) while the leader's disk write was held", propErr)
	}
	for i, n := range nodes {
		if a := n.fsm.applied.Load(); a >= idx {
			t.Errorf("n%d applied %d (entry %d) while the leader's disk write was held", i+1, a, idx)
		}
	}
	gate.held.Store(false)
	close(gate.release)
	<-answered
	if propErr != nil {
		t.Fatalf("the write, once on the leader's disk: %v", propErr)
	}
	for i, n := range nodes {
		poll.Until(t, waitTimeout, "n"+itoa(i+1)+" applies the write", func() bool { return n.fsm.applied.Load() >= idx })
	}
}

// A write behind replication that fails stops the leader (it leaves raft,
// as on a corrupt entry): its client gets an error, and the others elect
// a leader and take writes.
func TestLeaderWriteBehindFailureStopsMember(t *testing.T) {
	nodes, gates, leader := gatedCluster(t)
	eio := errors.New("write raft.wal: input/output error")
	gates[leader].failErr.Store(&eio)
	ld := nodes[leader]
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := ld.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/lost", Value: "v"}); err == nil {
		t.Fatal("a write whose entry the leader could not store was acknowledged")
	}
	select {
	case <-ld.Failed():
	case <-time.After(waitTimeout):
		t.Fatal("the leader did not stop after its write behind replication failed")
	}
	if err := ld.Err(); err == nil || !errors.Is(err, eio) {
		t.Fatalf("Err() = %v, want the write's error", err)
	}
	other := nodes[(leader+1)%3]
	poll.Until(t, waitTimeout, "a write through another member", func() bool { return put(other, "/after", "v") == nil })
}

// Deleting the whole log after installing a snapshot (raft's removeOldLogs)
// keeps the entries after the snapshot when the log holds its last entry
// with its term (hashicorp/raft#697: raft still counts them, and panicked
// reading one back); otherwise, and for any other deletion, it deletes
// what it is asked to.
func TestLogCacheKeepsEntriesAfterAnInstalledSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name        string
		snap        *[2]uint64 // index, term; nil: none
		lo, hi      uint64
		first, last uint64 // what is left; 0, 0: nothing
	}{
		{"whole log, snapshot's entry held", &[2]uint64{6, 1}, 1, 10, 6, 10},
		{"whole log, another term at the snapshot's index", &[2]uint64{6, 2}, 1, 10, 0, 0},
		{"whole log, snapshot at its end", &[2]uint64{10, 1}, 1, 10, 0, 0},
		{"whole log, snapshot past its end", &[2]uint64{12, 1}, 1, 10, 0, 0},
		{"whole log, no snapshot", nil, 1, 10, 0, 0},
		{"head after a snapshot", &[2]uint64{6, 1}, 1, 4, 5, 10},
		{"conflicting tail", &[2]uint64{6, 1}, 8, 10, 1, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &countingStore{InmemStore: raft.NewInmemStore()}
			c := newLogCache(s)
			if err := c.StoreLogs(entries(1, 10, 8)); err != nil {
				t.Fatal(err)
			}
			if tc.snap != nil {
				c.snapshotCreated(tc.snap[0], tc.snap[1])
			}
			if err := c.DeleteRange(tc.lo, tc.hi); err != nil {
				t.Fatal(err)
			}
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			if first != tc.first || last != tc.last {
				t.Fatalf("left %d..%d, want %d..%d", first, last, tc.first, tc.last)
			}
			var l raft.Log
			for i := tc.first; i <= tc.last && i > 0; i++ {
				if err := c.GetLog(i, &l); err != nil {
					t.Fatalf("GetLog(%d) of an entry kept: %v", i, err)
				}
			}
		})
	}
}

func TestLogCacheSnapshotRecordKeepsTheNewest(t *testing.T) {
	c := newLogCache(raft.NewInmemStore())
	c.snapshotCreated(20, 3)
	c.snapshotCreated(12, 2) // a local snapshot that started before the installed one
	if s := c.snap.Load(); s == nil || *s != [2]uint64{20, 3} {
		t.Fatalf("newest snapshot %v, want [20 3]", s)
	}
}
