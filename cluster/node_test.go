package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// fakeClock is the leader's clock in tests.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}

func startNode(t *testing.T, dir string, clk *fakeClock) *Node {
	t.Helper()
	n, err := New(Config{Name: "n1", DataDir: dir, ElectionTimeout: 200 * time.Millisecond,
		HeartbeatInterval: 20 * time.Millisecond, ExpiryInterval: 10 * time.Millisecond,
		SnapshotCount: 64, SnapshotInterval: 20 * time.Millisecond, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	poll.Until(t, waitTimeout, "leader ready", func() bool { return n.ReadBarrier(context.Background()) == nil })
	return n
}

func TestProposeReadRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	n := startNode(t, dir, clk)
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/k/" + itoa(i), Value: itoa(i)})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Concurrent writes share raft entries (batch.go): these, one at a
	// time, take an entry each, so the log passes the snapshot threshold.
	for i := range 100 {
		if _, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/seq/" + itoa(i), Value: itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/ttl", Value: "x", HasTTL: true, TTL: 30}); err != nil {
		t.Fatal(err)
	}
	// A store failure is the apply result, not a raft error.
	_, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/ttl", PrevExist: store.PrevExistFalse})
	var se *store.Error
	if !errors.As(err, &se) || se.ErrorCode != store.EcodeNodeExist {
		t.Fatalf("create existing: got %v, want 105", err)
	}
	idx := n.Store().Index()
	// 200+ entries with a snapshot every 64: raft must have compacted into a
	// snapshot, so the restart below restores from it and replays the rest.
	poll.Until(t, waitTimeout, "a snapshot", func() bool {
		snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
		return len(snaps) > 0
	})
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	n2 := startNode(t, dir, clk)
	if got := n2.Store().Index(); got != idx {
		t.Fatalf("index after restart = %d, want %d", got, idx)
	}
	for i := range 200 {
		e, err := n2.Store().Get("/k/"+itoa(i), false, false, clk.now())
		if err != nil || *e.Node.Value != itoa(i) {
			t.Fatalf("key %d after restart: %v", i, err)
		}
	}
	// The TTL key expires 30 s of leader time after it was written, not earlier.
	clk.add(29 * time.Second)
	if _, err := n2.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/tick", Value: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Store().Get("/ttl", false, false, clk.now()); err != nil {
		t.Fatalf("ttl key expired early: %v", err)
	}
	clk.add(2 * time.Second)
	poll.Until(t, waitTimeout, "expiry", func() bool {
		_, err := n2.Store().Get("/ttl", false, false, clk.now())
		return err != nil
	})
}

func TestCommandRoundTrip(t *testing.T) {
	for _, r := range []*store.Request{
		{Method: "PUT", Path: "/a", Value: "v", Dir: true, PrevValue: "p", PrevIndex: 7, PrevExist: store.PrevExistFalse, HasTTL: true, TTL: 9, Refresh: true, Recursive: true},
		{Method: "DELETE", Path: "/"},
		{Method: "POST", Path: "/q", Value: string(make([]byte, 300))},
	} {
		c := command{typ: cmdRequest, now: time.Unix(5, 6), req: r}
		got, err := decodeCommand(c.encode())
		if err != nil {
			t.Fatal(err)
		}
		if *got.req != *r || !got.now.Equal(c.now) {
			t.Fatalf("round trip: got %+v want %+v", got.req, r)
		}
	}
	good := (&command{typ: cmdRequest, now: time.Unix(1, 0), req: &store.Request{Method: "PUT", Path: "/x"}}).encode()
	for i := range len(good) {
		if _, err := decodeCommand(good[:i]); err == nil {
			t.Fatalf("truncated command of %d bytes decoded", i)
		}
	}
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}

// waitTimeout bounds every poll of these tests: generous, as a loaded CI
// machine running -race is slow, and never reached when all is well. On
// 32-bit ARM, three times that: .ci/32bit runs these tests under qemu-arm
// emulation, where a member catching up from a snapshot took over 10 s.
var waitTimeout = func() time.Duration {
	if runtime.GOARCH == "arm" {
		return 30 * time.Second
	}
	return 10 * time.Second
}()
