package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// TestHistoryBytesReplicated: Config.HistoryBytes reaches every member's
// store, and members that applied the same entries keep the same watch
// window, including one that caught up from a raft snapshot and one that
// restarted from its own.
func TestHistoryBytesReplicated(t *testing.T) {
	const historyBytes = 40 << 10
	hub := NewInmemHub()
	addr := func(i int) string { return fmt.Sprintf("10.0.0.%d:7001", i+1) }
	dirs := make([]string, 3)
	for i := range dirs {
		dirs[i] = filepath.Join(t.TempDir(), "n")
	}
	nodes := make([]*Node, 3)
	start := func(i int) {
		t.Helper()
		var peers []string
		for j := range dirs {
			if j != i {
				peers = append(peers, addr(j))
			}
		}
		n, err := New(Config{Name: fmt.Sprintf("n%d", i), DataDir: dirs[i], PeerAddr: addr(i),
			ElectionTimeout: 400 * time.Millisecond, HeartbeatInterval: 20 * time.Millisecond,
			ExpiryInterval: 20 * time.Millisecond, SnapshotCount: 16, SnapshotInterval: 20 * time.Millisecond,
			HistoryBytes: historyBytes, Network: hub.Network(addr(i)), Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown(context.Background()) })
		nodes[i] = n
	}
	stop := func(i int) {
		t.Helper()
		if err := nodes[i].Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		nodes[i] = nil
	}
	for i := range nodes {
		start(i)
	}
	ctx := context.Background()
	poll.Until(t, waitTimeout, "a leader with three voters", func() bool {
		if nodes[0].ReadBarrier(ctx) != nil {
			return false
		}
		srv, err := nodes[0].servers()
		return err == nil && len(srv) == 3
	})
	// propose retries a write through an election (400 ms timeouts, slow
	// under load or emulation): the same write again is harmless here.
	propose := func(n *Node, req *store.Request) *store.Event {
		t.Helper()
		var ev *store.Event
		err := poll.Check(waitTimeout, func() error {
			var err error
			ev, err = n.Propose(ctx, req)
			if err != nil && !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrNotLeader) {
				return poll.Stop(err)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	write := func(from, to int) uint64 {
		t.Helper()
		var last uint64
		for i := from; i < to; i++ {
			// Values of 0.5 to 8 KB: about ten of them fill the bound.
			v := strings.Repeat(string(rune('a'+i%26)), 512*(1+i%16))
			n := nodes[i%3]
			if n == nil {
				n = nodes[0]
			}
			req := &store.Request{Method: store.MethodPut, Path: fmt.Sprintf("/k%d", i%5), Value: v}
			last = propose(n, req).Index()
		}
		return last
	}
	same := func(what string, last uint64) {
		t.Helper()
		poll.Until(t, waitTimeout, "every member applied "+fmt.Sprint(last), func() bool {
			for _, n := range nodes {
				if n.Store().Index() < last {
					return false
				}
			}
			return true
		})
		s0, l0 := nodes[0].Store().HistoryRange()
		e0, b0 := nodes[0].Store().HistoryUsage()
		if b0 > historyBytes || l0 != last || s0 <= 1 {
			t.Fatalf("%s: member 0 keeps [%d,%d], %d events of %d bytes; want the last %d within %d bytes", what, s0, l0, e0, b0, last, historyBytes)
		}
		for i, n := range nodes[1:] {
			s, l := n.Store().HistoryRange()
			e, b := n.Store().HistoryUsage()
			if s != s0 || l != l0 || e != e0 || b != b0 {
				t.Errorf("%s: member %d keeps [%d,%d], %d events of %d bytes; member 0 [%d,%d], %d, %d", what, i+1, s, l, e, b, s0, l0, e0, b0)
			}
		}
		_, err := nodes[2].Store().Watch("/", true, false, s0-1)
		if se, ok := err.(*store.Error); !ok || se.ErrorCode != store.EcodeEventIndexCleared {
			t.Fatalf("%s: watch from %d: %v, want 401", what, s0-1, err)
		}
	}
	same("live", write(0, 60))

	// Member 2 loses its disk and misses more entries than the leader keeps
	// (TrailingLogs, 1024), so it catches up from the leader's snapshot;
	// member 1 restarts from its own snapshot and log.
	// One at a time: concurrent writes would share raft entries (batch.go).
	stop(2)
	for i := range 1100 {
		propose(nodes[0], &store.Request{Method: store.MethodPut, Path: "/small", Value: fmt.Sprint(i)})
	}
	// Member 2 must need a snapshot: neither possible leader may still
	// hold the log's first entries (their snapshots and compactions run in
	// the background, slowly on a loaded machine or under emulation).
	for _, i := range []int{0, 1} {
		poll.Until(t, waitTimeout, fmt.Sprintf("member %d's log compacted", i), func() bool {
			first, err := nodes[i].lcache.FirstIndex()
			return err == nil && first > 1
		})
	}
	dirs[2] = filepath.Join(t.TempDir(), "wiped")
	stop(1)
	start(1)
	start(2)
	last := write(120, 130)
	installed, _ := filepath.Glob(filepath.Join(dirs[2], "snapshots", "*", "state.bin"))
	if len(installed) == 0 {
		t.Fatalf("member 2 caught up without installing a snapshot")
	}
	same("after snapshot restores", last)
}
