package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// blockingReader blocks every Read until release is closed, then fails.
type blockingReader struct{ entered, release chan struct{} }

func (r *blockingReader) Read([]byte) (int, error) {
	select {
	case r.entered <- struct{}{}:
	default:
	}
	<-r.release
	return 0, errors.New("test: released")
}

// TestVerifierStopsWithNode: a leadership confirmation still queued in
// raft when the node shuts down must not outlive Shutdown. hashicorp/raft
// answers a VerifyLeader future only from its main loop, and one left in
// its queue when raft stops is never answered (it sets no ShutdownCh on
// it): the verifier must neither start a round once the node stops nor
// let raft stop before the round in flight is answered.
//
// The test holds raft's main loop in a user restore (it copies the
// snapshot in the main loop, from a reader that blocks), so that the
// confirmation of a read waits in raft's queue, then shuts the node down.
// The main loop is let go once either the read has returned (the node's
// stop reached the verifier, which holds Shutdown until its round is
// answered) or raft has shut down (the round was left behind).
func TestVerifierStopsWithNode(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	n, err := New(Config{Name: "n1", DataDir: t.TempDir(), ElectionTimeout: 200 * time.Millisecond,
		HeartbeatInterval: 20 * time.Millisecond, RequestTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Quiet first: the member's announcement of its name is a raft write
	// that Shutdown would wait for.
	poll.Until(t, waitTimeout, "the member announced and a linearizable read", func() bool {
		ms := n.Members()
		return len(ms) == 1 && ms[0].Name == "n1" && n.ReadBarrier(context.Background()) == nil
	})

	// The same check New installs, telling the test when its future is
	// queued.
	queued := make(chan struct{})
	n.verify = newVerifier(func() (uint64, error) {
		f := n.raft.VerifyLeader()
		close(queued)
		return 0, f.Error()
	})

	r := &blockingReader{entered: make(chan struct{}, 1), release: make(chan struct{})}
	restored := make(chan error, 1)
	go func() {
		meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: 1, Term: 1}
		restored <- n.raft.Restore(meta, r, time.Minute)
	}()
	<-r.entered // raft's main loop is in the restore

	read := make(chan error, 1)
	go func() { read <- n.ReadBarrier(context.Background()) }()
	<-queued

	shut := make(chan error, 1)
	go func() { shut <- n.Shutdown(context.Background()) }()
	var readErr error
	poll.Until(t, waitTimeout, "the read to end or raft to shut down", func() bool {
		select {
		case readErr = <-read:
			read <- readErr
			return true
		default:
			return n.raft.State() == raft.Shutdown
		}
	})
	close(r.release)
	if err := <-restored; err == nil {
		t.Error("the restore from a failing reader succeeded")
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	n.verify.mu.Lock()
	running := n.verify.running
	n.verify.mu.Unlock()
	if running {
		t.Fatal("the verifier still waits for a confirmation after Shutdown returned: raft stopped without answering it")
	}
	if err := <-read; !errors.Is(err, ErrStopped) {
		t.Errorf("read during Shutdown: %v, want ErrStopped", err)
	}
}

// TestVerifierGivesUpOnStoppedRaft: raft can shut down on its own (a
// member removed from the configuration does), and a round queued then is
// never answered. Once the node stops, the verifier gives up on it rather
// than hold Shutdown, which waits for it, for good.
func TestVerifierGivesUpOnStoppedRaft(t *testing.T) {
	never := make(chan struct{}) // raft's answer; closed only to end the fake
	defer close(never)
	queued := make(chan struct{})
	v := newVerifier(func() (uint64, error) {
		close(queued)
		<-never
		return 0, nil
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var down atomic.Bool
	sc := verifyScope{stop: stop, wg: &wg, raftDown: down.Load}
	read := make(chan error, 1)
	go func() {
		_, err := v.do(context.Background(), sc)
		read <- err
	}()
	<-queued

	down.Store(true) // raft shut itself down under the round
	close(stop)      // then Node.Shutdown: stop, wait for the WaitGroup
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	poll.Until(t, waitTimeout, "the verifier to give up on a round raft will not answer", func() bool {
		return stopped(waited)
	})
	if err := <-read; !errors.Is(err, ErrStopped) {
		t.Errorf("read: %v, want ErrStopped", err)
	}
}

// hookedNetwork runs hook, when set, before each call it passes on.
type hookedNetwork struct {
	Network
	hook atomic.Pointer[func(req []byte)]
}

func (h *hookedNetwork) Call(ctx context.Context, addr string, req []byte) ([]byte, error) {
	if f := h.hook.Load(); f != nil {
		(*f)(req)
	}
	return h.Network.Call(ctx, addr, req)
}

// Linearizable reads through a follower share its requests for the
// leader's read index: with one request held in flight, twenty reads that
// arrive meanwhile are all served by the one next request, and each sees
// a write acknowledged before it began.
func TestFollowerReadsShareReadIndex(t *testing.T) {
	clk := newFakeClock()
	nets := map[string]*hookedNetwork{}
	nodes, li := startThreeWith(t, clk, func(c *Config) {
		h := &hookedNetwork{Network: c.Network}
		nets[c.Name] = h
		c.Network = h
	})
	leader, f := nodes[li], nodes[(li+1)%3]
	ctx := context.Background()
	if _, err := leader.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/r", Value: "before"}); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	hook := func(req []byte) {
		if req[0] != opReadIndex {
			return
		}
		if asked.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
	}
	nets[f.cfg.Name].hook.Store(&hook)
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	first := make(chan error, 1)
	go func() { first <- f.ReadBarrier(ctx) }()
	<-entered // the first request is on its way, held
	if _, err := leader.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/r", Value: "after"}); err != nil {
		t.Fatal(err)
	}
	const reads = 20
	errs := make(chan error, reads)
	for range reads {
		go func() {
			if err := f.ReadBarrier(ctx); err != nil {
				errs <- err
				return
			}
			ev, err := f.Store().Get("/r", false, false, clk.now())
			if err == nil && *ev.Node.Value != "after" {
				err = fmt.Errorf("read %q after the write of %q was acknowledged", *ev.Node.Value, "after")
			}
			errs <- err
		}()
	}
	poll.Until(t, waitTimeout, "every read waiting for the next round", func() bool {
		f.readIdx.mu.Lock()
		defer f.readIdx.mu.Unlock()
		return f.readIdx.next != nil && f.readIdx.next.waiters == reads
	})
	once.Do(func() { close(release) })
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range reads {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("%d requests for the read index served %d reads and the held one, want 2", n, reads)
	}
}

// lossyNetwork loses the answer of the next call whose op is lose: the
// request reaches the peer and is served, then the caller sees the
// connection fail, as when a peer connection dies under a call.
type lossyNetwork struct {
	Network
	lose   atomic.Int32 // an op, or 0
	served atomic.Int32 // calls whose answer was lost
}

func (l *lossyNetwork) Call(ctx context.Context, addr string, req []byte) ([]byte, error) {
	ans, err := l.Network.Call(ctx, addr, req)
	if err == nil && l.lose.CompareAndSwap(int32(req[0]), 0) {
		l.served.Add(1)
		return nil, fmt.Errorf("peer: answer from peer %s: connection reset", addr)
	}
	return ans, err
}

// A follower's read whose read-index answer is lost with its connection
// asks again (the request changes nothing on the leader), while a
// forwarded write whose answer is lost is not sent twice: the client sees
// the error, and the write was applied once.
func TestLostAnswerRetriedOnlyForReads(t *testing.T) {
	clk := newFakeClock()
	nets := map[string]*lossyNetwork{}
	nodes, li := startThreeWith(t, clk, func(c *Config) {
		l := &lossyNetwork{Network: c.Network}
		nets[c.Name] = l
		c.Network = l
	})
	leader, f := nodes[li], nodes[(li+1)%3]
	ctx := context.Background()
	put, err := leader.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/r", Value: "before"})
	if err != nil {
		t.Fatal(err)
	}
	net := nets[f.cfg.Name]
	net.lose.Store(int32(opReadIndex))
	if err := f.ReadBarrier(ctx); err != nil {
		t.Fatalf("read through a follower whose read-index answer was lost: %v", err)
	}
	if net.served.Load() != 1 {
		t.Fatalf("%d read-index answers lost, want 1", net.served.Load())
	}

	net.lose.Store(int32(opPropose))
	if _, err := f.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/n", Value: "once", PrevExist: store.PrevExistFalse}); err == nil {
		t.Fatal("a forwarded write whose answer was lost succeeded; want the connection's error")
	}
	if err := f.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err := f.Store().Get("/n", false, false, clk.now())
	if err != nil || *ev.Node.Value != "once" {
		t.Fatalf("the write whose answer was lost: %+v, %v; want it applied", ev, err)
	}
	if ev.Node.ModifiedIndex != put.EtcdIndex+1 {
		t.Errorf("/n at index %d, want %d: the write was applied more than once", ev.Node.ModifiedIndex, put.EtcdIndex+1)
	}
}
