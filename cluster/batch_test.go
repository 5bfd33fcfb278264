package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

func refreshReq(key string, ttl uint64) *store.Request {
	return &store.Request{Method: store.MethodPut, Path: key, PrevExist: store.PrevExistTrue,
		HasTTL: true, TTL: ttl, Refresh: true}
}

func TestBatchCommandRoundTrip(t *testing.T) {
	c := command{typ: cmdBatch, now: time.Unix(5, 6), reqs: []*store.Request{
		refreshReq("/a", 10), {Method: store.MethodPut, Path: "/b", Value: "v", PrevValue: "p", PrevIndex: 3, Dir: true, Recursive: true},
		refreshReq("/c", 0),
	}}
	got, err := decodeCommand(c.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.typ != cmdBatch || !got.now.Equal(c.now) || !reflect.DeepEqual(got.reqs, c.reqs) {
		t.Errorf("decoded %+v, want %+v", got, c)
	}
	body := c.encodeBody(nil)
	for k := range len(body) - 1 {
		if _, err := decodeBody(body[:k]); err == nil {
			t.Errorf("a batch cut at %d of %d bytes decoded", k, len(body))
		}
	}
}

// A batch entry applies its requests in order at its time, each with its
// own result, exactly as separate entries at that time would: the same
// events (etcd indexes, modifiedIndex, expiration), the same errors (a
// refresh of a missing key is 100 for that request only), the same store.
func TestBatchAppliesAsSeparateEntries(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	setup := []*store.Request{
		{Method: store.MethodPut, Path: "/svc/a", Value: "A", HasTTL: true, TTL: 10},
		{Method: store.MethodPut, Path: "/svc/b", Value: "B", HasTTL: true, TTL: 10},
		{Method: store.MethodPut, Path: "/plain", Value: "P"},
	}
	batch := []*store.Request{
		refreshReq("/svc/a", 30),
		refreshReq("/svc/missing", 30), // 100: key not found
		refreshReq("/svc/b", 20),
		refreshReq("/svc/a", 40), // the same key again: applied after the first
		{Method: store.MethodPut, Path: "/svc/b", Refresh: true, HasTTL: true, TTL: 5, Value: "x"}, // 211: value on refresh
		refreshReq("/plain", 7), // a permanent key gets a TTL, as in etcd
	}
	fresh := func() *fsm {
		f := newFSM(store.New(store.Config{}), nil)
		for i, r := range setup {
			c := command{typ: cmdRequest, now: at, req: r}
			f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: c.encode()})
		}
		return f
	}
	now := at.Add(3 * time.Second)
	one := fresh()
	c := command{typ: cmdBatch, now: now, reqs: batch}
	res := one.Apply(&raft.Log{Index: 10, Type: raft.LogCommand, Data: c.encode()}).(applyResult)
	if len(res.batch) != len(batch) {
		t.Fatalf("%d results for %d requests", len(res.batch), len(batch))
	}
	sep := fresh()
	for i, r := range batch {
		c := command{typ: cmdRequest, now: now, req: r}
		want := sep.Apply(&raft.Log{Index: uint64(10 + i), Type: raft.LogCommand, Data: c.encode()}).(applyResult)
		got := res.batch[i]
		if !reflect.DeepEqual(got.event, want.event) || fmt.Sprint(got.err) != fmt.Sprint(want.err) {
			t.Errorf("request %d (%s ttl %d): batch gave %+v %v, a separate entry %+v %v", i, r.Path, r.TTL, got.event, got.err, want.event, want.err)
		}
	}
	var se *store.Error
	if !errors.As(res.batch[1].err, &se) || se.ErrorCode != store.EcodeKeyNotFound {
		t.Errorf("refresh of a missing key: %v, want error 100", res.batch[1].err)
	}
	if res.batch[0].err != nil || res.batch[2].err != nil || res.batch[3].err != nil {
		t.Errorf("the others failed: %v %v %v", res.batch[0].err, res.batch[2].err, res.batch[3].err)
	}
	if got, want := res.batch[3].event.Node.Expiration, now.Add(40*time.Second); got == nil || !got.Equal(want) {
		t.Errorf("/svc/a expires at %v after its second refresh, want %v", got, want)
	}
	if one.store.Index() != sep.store.Index() {
		t.Errorf("etcd index %d after the batch, %d after separate entries", one.store.Index(), sep.store.Index())
	}
	for _, k := range []string{"/svc/a", "/svc/b", "/plain"} {
		a, _ := one.store.Get(k, false, false, now)
		b, _ := sep.store.Get(k, false, false, now)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %+v after the batch, %+v after separate entries", k, a, b)
		}
	}
}

// startThree starts three members on one fake clock and returns them with
// the leader's index, once every member has announced featureBatch.
func startThree(t *testing.T, clk *fakeClock) ([]*Node, int) {
	t.Helper()
	return startThreeWith(t, clk, func(*Config) {})
}

// startThreeWith is startThree with edit applied to each member's Config.
func startThreeWith(t *testing.T, clk *fakeClock, edit func(*Config)) ([]*Node, int) {
	t.Helper()
	hub := NewInmemHub()
	nodes := make([]*Node, 3)
	addr := func(i int) string { return "10.0.0." + itoa(i+1) + ":7001" }
	for i := range nodes {
		cfg := Config{Name: "n" + itoa(i+1), DataDir: t.TempDir(), PeerAddr: addr(i), Network: hub.Network(addr(i)),
			Now: clk.now, ElectionTimeout: clusterElection, HeartbeatInterval: 50 * time.Millisecond,
			RequestTimeout: time.Minute}
		if i > 0 {
			cfg.Peers = []string{addr(0)}
		}
		edit(&cfg)
		nodes[i] = startNodeTimed(t, cfg)
	}
	leader := -1
	poll.Until(t, waitTimeout, "three members with featureBatch and a leader", func() bool {
		for i, n := range nodes {
			if n.isLeader() && len(n.Members()) == 3 && n.clusterHas(featureBatch) {
				leader = i
				return true
			}
		}
		return false
	})
	return nodes, leader
}

// register writes keys TTL'd keys /reg/k0, /reg/k1, ... through n, one
// at a time.
func register(t *testing.T, n *Node, keys int) {
	t.Helper()
	for i := range keys {
		if _, err := n.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: fmt.Sprintf("/reg/k%d", i),
			Value: "v", HasTTL: true, TTL: 30}); err != nil {
			t.Fatal(err)
		}
	}
}

// holdBatches makes n's batcher stop before proposing its next batch:
// sizes receives each batch's size, and it goes on when release gets a
// value (or is closed), or once the test ends: a test that fails while a
// batch is held must not leave the node's shutdown waiting for it.
func holdBatches(t *testing.T, n *Node) (sizes <-chan int, release chan<- struct{}) {
	s, r, end := make(chan int, 16), make(chan struct{}), make(chan struct{})
	h := func(size int) {
		select {
		case s <- size:
		case <-end:
			return
		}
		select {
		case <-r:
		case <-end:
		}
	}
	n.batch.hold.Store(&h)
	t.Cleanup(func() { n.batch.hold.Store(nil); close(end) })
	return s, r
}

// Many concurrent refreshes, through the leader and through followers,
// cost far fewer raft entries than refreshes: the test holds the first
// batch until every other refresh is queued, so they share the second
// entry; exactly two entries carry them all.
func TestConcurrentRefreshesShareEntries(t *testing.T) {
	clk := newFakeClock()
	nodes, li := startThree(t, clk)
	leader := nodes[li]
	ctx := context.Background()
	const keys = 60
	register(t, leader, keys)
	sizes, release := holdBatches(t, leader)
	entries0 := counterValue(t, leader.metrics.heartbeatEntries)
	index0 := leader.raft.LastIndex()
	etcd0 := leader.store.Index()

	clk.add(time.Second)
	var wg sync.WaitGroup
	errs := make([]error, keys)
	evs := make([]*store.Event, keys)
	refresh := func(i int) {
		wg.Go(func() {
			evs[i], errs[i] = nodes[i%3].Propose(ctx, refreshReq(fmt.Sprintf("/reg/k%d", i), 60))
		})
	}
	refresh(0)
	if first := <-sizes; first != 1 {
		t.Fatalf("first batch of %d, want the one refresh sent", first)
	}
	for i := 1; i < keys; i++ {
		refresh(i)
	}
	poll.Until(t, waitTimeout, "every other refresh queued behind the held batch", func() bool {
		return leader.batch.queued() == keys-1
	})
	release <- struct{}{}
	if second := <-sizes; second != keys-1 {
		t.Errorf("second batch of %d, want the %d queued", second, keys-1)
	}
	close(release)
	wg.Wait()
	want := clk.now().Add(60 * time.Second)
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if exp := evs[i].Node.Expiration; exp == nil || !exp.Equal(want) {
			t.Errorf("refresh %d: expiration %v, want %v", i, exp, want)
		}
	}
	if got := counterValue(t, leader.metrics.heartbeatEntries) - entries0; got != 2 {
		t.Errorf("%d refreshes caused %v heartbeat entries, want 2", keys, got)
	}
	if got := leader.raft.LastIndex() - index0; got != 2 {
		t.Errorf("%d refreshes moved the raft index by %d, want 2", keys, got)
	}
	if got := leader.store.Index() - etcd0; got != keys {
		t.Errorf("%d refreshes moved the etcd index by %d, want one each", keys, got)
	}
	var heard float64
	for _, n := range nodes {
		heard += counterValue(t, n.metrics.heartbeats)
	}
	if heard != keys {
		t.Errorf("members counted %v heartbeats received, want %d", heard, keys)
	}
}

// Concurrent writes of every kind share entries as refreshes do, and each
// keeps its own result: a distinct etcd index, its own error (a failed
// compare-and-swap fails alone), one watch event per change in index
// order, and the same tree on every member.
func TestConcurrentWritesShareEntries(t *testing.T) {
	clk := newFakeClock()
	nodes, li := startThree(t, clk)
	leader := nodes[li]
	ctx := context.Background()
	if _, err := leader.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/w/cas", Value: "old"}); err != nil {
		t.Fatal(err)
	}
	w, err := nodes[(li+1)%3].store.Watch("/w", true, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Remove()
	sizes, release := holdBatches(t, leader)
	index0, etcd0 := leader.raft.LastIndex(), leader.store.Index()

	const writes = 40
	var wg sync.WaitGroup
	errs := make([]error, writes+1)
	evs := make([]*store.Event, writes+1)
	put := func(i int, r *store.Request) {
		wg.Go(func() { evs[i], errs[i] = nodes[i%3].Propose(ctx, r) })
	}
	put(0, &store.Request{Method: store.MethodPut, Path: "/w/k0", Value: "v0"})
	select {
	case first := <-sizes:
		if first != 1 {
			t.Fatalf("first batch of %d, want the one write sent", first)
		}
	case <-time.After(waitTimeout):
		close(release)
		wg.Wait()
		t.Fatal("a plain write did not go through the leader's batch queue")
	}
	for i := 1; i < writes; i++ {
		put(i, &store.Request{Method: store.MethodPut, Path: fmt.Sprintf("/w/k%d", i), Value: fmt.Sprintf("v%d", i)})
	}
	put(writes, &store.Request{Method: store.MethodPut, Path: "/w/cas", Value: "new", PrevValue: "wrong"})
	poll.Until(t, waitTimeout, "every other write queued behind the held batch", func() bool {
		return leader.batch.queued() == writes
	})
	release <- struct{}{}
	if second := <-sizes; second != writes {
		t.Errorf("second batch of %d, want the %d queued", second, writes)
	}
	close(release)
	wg.Wait()

	seen := map[uint64]bool{}
	for i := range writes {
		if errs[i] != nil {
			t.Fatalf("write %d: %v", i, errs[i])
		}
		idx := evs[i].Node.ModifiedIndex
		if seen[idx] {
			t.Errorf("write %d got index %d, which another write has", i, idx)
		}
		seen[idx] = true
	}
	var serr *store.Error
	if !errors.As(errs[writes], &serr) || serr.ErrorCode != store.EcodeTestFailed {
		t.Errorf("the failing compare-and-swap answered %v, want error 101", errs[writes])
	}
	if got := leader.raft.LastIndex() - index0; got != 2 {
		t.Errorf("%d writes moved the raft index by %d, want 2", writes+1, got)
	}
	if got := leader.store.Index() - etcd0; got != writes {
		t.Errorf("%d successful writes moved the etcd index by %d", writes, got)
	}
	last := uint64(0)
	for range writes {
		select {
		case ev := <-w.EventChan():
			if ev.Index() <= last {
				t.Errorf("watch event at index %d after %d", ev.Index(), last)
			}
			last = ev.Index()
		case <-time.After(waitTimeout):
			t.Fatalf("a follower's watcher got %d of %d events", len(seen), writes)
		}
	}
	for _, n := range nodes {
		poll.Until(t, waitTimeout, "every member applied the batch", func() bool { return n.store.Index() == leader.store.Index() })
		for i := range writes {
			ev, err := n.store.Get(fmt.Sprintf("/w/k%d", i), false, false, clk.now())
			if err != nil || ev.Node.ModifiedIndex != evs[i].Node.ModifiedIndex {
				t.Fatalf("member %s, /w/k%d: %v, %v; want index %d", n.cfg.Name, i, ev, err, evs[i].Node.ModifiedIndex)
			}
		}
	}
}

// After a refresh is acknowledged, a linearizable read on any member shows
// its new TTL and expiration, whichever member took the refresh.
func TestRefreshReadOnFollower(t *testing.T) {
	clk := newFakeClock()
	nodes, li := startThree(t, clk)
	ctx := context.Background()
	if _, err := nodes[li].Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/reg/x", Value: "v", HasTTL: true, TTL: 10}); err != nil {
		t.Fatal(err)
	}
	for i, via := range nodes {
		clk.add(time.Second)
		ttl := uint64(100 + i)
		ev, err := via.Propose(ctx, refreshReq("/reg/x", ttl))
		if err != nil {
			t.Fatalf("refresh through member %d: %v", i, err)
		}
		want := clk.now().Add(time.Duration(ttl) * time.Second)
		if ev.Node.Expiration == nil || !ev.Node.Expiration.Equal(want) {
			t.Fatalf("refresh through member %d answered expiration %v, want %v", i, ev.Node.Expiration, want)
		}
		for j, n := range nodes {
			if err := n.ReadBarrier(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := n.Store().Get("/reg/x", false, false, clk.now())
			if err != nil {
				t.Fatal(err)
			}
			if got.Node.Expiration == nil || !got.Node.Expiration.Equal(want) || got.Node.TTL != int64(ttl) {
				t.Errorf("refresh through member %d, read on member %d: expiration %v ttl %d, want %v ttl %d",
					i, j, got.Node.Expiration, got.Node.TTL, want, ttl)
			}
		}
	}
}

// Refreshes queued on a leader that loses its leadership before their
// batch is proposed are not proposed there (ErrNotLeader: nothing
// applied), and Propose sends them on to the new leader: every one is
// applied exactly once, none is lost.
func TestRefreshBatchAcrossLeaderLoss(t *testing.T) {
	clk := newFakeClock()
	nodes, li := startThree(t, clk)
	old := nodes[li]
	ctx := context.Background()
	const keys = 30
	register(t, old, keys)
	sizes, release := holdBatches(t, old)
	etcd0 := old.store.Index()
	var wg sync.WaitGroup
	errs := make([]error, keys)
	refresh := func(i int) {
		wg.Go(func() {
			_, errs[i] = nodes[(li+i)%3].Propose(ctx, refreshReq(fmt.Sprintf("/reg/k%d", i), 60))
		})
	}
	refresh(0) // through the leader: its batch is held
	if first := <-sizes; first != 1 {
		t.Fatalf("first batch of %d, want the one refresh sent", first)
	}
	for i := 1; i < keys; i++ {
		refresh(i)
	}
	poll.Until(t, waitTimeout, "every other refresh queued", func() bool { return old.batch.queued() == keys-1 })
	if err := old.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	poll.Until(t, waitTimeout, "the old leader a follower", func() bool { return !old.isLeader() })
	// Batches proposed on the old leader now fail with ErrNotLeader.
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("refresh %d: %v", i, err)
		}
	}
	var newLeader *Node
	poll.Until(t, waitTimeout, "a new leader", func() bool {
		for _, n := range nodes {
			if n.isLeader() {
				newLeader = n
				return true
			}
		}
		return false
	})
	if err := newLeader.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := newLeader.store.Index() - etcd0; got != keys {
		t.Errorf("%d refreshes moved the etcd index by %d: some were lost or applied twice", keys, got)
	}
	for _, err := range errs {
		if errors.Is(err, ErrNotLeader) {
			t.Error("a refresh answered ErrNotLeader although a leader was elected")
		}
	}
}

// Until every member has announced featureBatch (an older binary in a
// rolling upgrade), refreshes are entries of their own.
func TestRefreshWithoutFeatureIsOneEntryEach(t *testing.T) {
	clk := newFakeClock()
	nodes, li := startThree(t, clk)
	leader := nodes[li]
	ctx := context.Background()
	if _, err := leader.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/reg/a", Value: "v", HasTTL: true, TTL: 30}); err != nil {
		t.Fatal(err)
	}
	// A follower announced as an older binary would: no features.
	other := nodes[(li+1)%3]
	info, _ := leader.fsm.member(other.id)
	if err := leader.proposeMember(ctx, &memberCmd{ID: other.id, Name: info.Name, PeerURLs: info.PeerURLs, ClientURLs: info.ClientURLs}); err != nil {
		t.Fatal(err)
	}
	if leader.clusterHas(featureBatch) {
		t.Fatal("the cluster has featureBatch with a member that did not announce it")
	}
	entries0 := counterValue(t, leader.metrics.heartbeatEntries)
	const n = 5
	for range n {
		if _, err := nodes[li].Propose(ctx, refreshReq("/reg/a", 30)); err != nil {
			t.Fatal(err)
		}
	}
	if got := counterValue(t, leader.metrics.heartbeatEntries) - entries0; got != n {
		t.Errorf("%d refreshes without featureBatch: %v entries, want one each", n, got)
	}
}

// counterValue reads c through a registry of its own.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather %v: %v", mfs, err)
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}

// The features members announced survive a snapshot: a member restored
// from one still knows the cluster can apply batches.
func TestFeaturesInSnapshot(t *testing.T) {
	f := newFSM(store.New(store.Config{}), nil)
	c := command{typ: cmdMember, now: time.Unix(1, 0), member: &memberCmd{ID: 7, Name: "n7", Features: ownFeatures}}
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: c.encode()})
	h, _ := f.capture()
	pre, err := encodeSnapHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := decodeSnapHeader(bytes.NewReader(pre))
	if err != nil {
		t.Fatal(err)
	}
	g := newFSM(store.New(store.Config{}), nil)
	g.restoreHeader(got)
	if m, ok := g.member(7); !ok || m.Features != ownFeatures {
		t.Errorf("member after a snapshot: %+v %v, want features %d", m, ok, ownFeatures)
	}
}
