package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// TestRestartReplaysLocalLog: a member restarted while no leader can reach
// it serves what it had applied before it stopped (its own log replayed up
// to its mark, no snapshot taken), instead of an empty store; once the
// others are back raft delivers the same entries again and the member
// skips them: every member ends with the same keys at the same index.
func TestRestartReplaysLocalLog(t *testing.T) {
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
			Network: hub.Network(addr(i)), Peers: peers})
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
	poll.Until(t, waitTimeout, "a leader with three voters", func() bool {
		srv, err := nodes[0].servers()
		return err == nil && len(srv) == 3 && nodes[0].raft.Leader() != ""
	})
	ctx := context.Background()
	const keys = 50
	var last uint64
	for i := range keys {
		req := &store.Request{Method: store.MethodPut, Path: fmt.Sprintf("/k/%d", i), Value: fmt.Sprint(i)}
		ev, err := nodes[i%3].Propose(ctx, req)
		for try := 0; try < 5 && err != nil; try++ {
			ev, err = nodes[i%3].Propose(ctx, req) // an election under load; a second copy is harmless here
		}
		if err != nil {
			t.Fatal(err)
		}
		last = ev.Index()
	}
	poll.Until(t, waitTimeout, "member 2 applied every write", func() bool { return nodes[2].Store().Index() >= last })
	for i := range nodes {
		stop(i)
	}

	// Member 2 alone: no leader, so raft applies nothing; the replay does.
	start(2)
	n := nodes[2]
	if got := n.Store().Index(); got < last {
		t.Fatalf("restarted member serves store index %d, want %d (what it applied before the stop)", got, last)
	}
	for i := range keys {
		ev, err := n.Store().Get(fmt.Sprintf("/k/%d", i), false, false, time.Now())
		if err != nil || *ev.Node.Value != fmt.Sprint(i) {
			t.Fatalf("key %d after the restart: %+v, %v", i, ev, err)
		}
	}
	if !n.CaughtUp() {
		t.Fatal("CaughtUp is false after the replay")
	}

	// The others return: raft delivers the replayed entries again.
	start(0)
	start(1)
	ev, err := nodes[0].Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/after", Value: "x"})
	for try := 0; try < 10 && err != nil; try++ {
		ev, err = nodes[0].Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/after", Value: "x"})
	}
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, waitTimeout, "every member applied the write after the restart", func() bool {
		for _, n := range nodes {
			if n.Store().Index() < ev.Index() {
				return false
			}
		}
		return true
	})
	for i, n := range nodes {
		if got := n.Store().Index(); got != ev.Index() {
			t.Errorf("member %d at store index %d, want %d (an entry applied twice moves it)", i, got, ev.Index())
		}
	}

	// A mark the log does not hold (a log replaced since): nothing is
	// replayed, and the member says it is behind until it applies as far.
	stop(2)
	w, err := openAppliedWriter(dirs[2])
	if err != nil {
		t.Fatal(err)
	}
	w.write(appliedMark{index: ev.Index() + 1000, term: 1})
	w.Close()
	start(2)
	if nodes[2].CaughtUp() || !strings.Contains(nodes[2].Status().CatchingUp, "catching up") {
		t.Fatalf("member with a mark beyond its log: CaughtUp %v, status %q", nodes[2].CaughtUp(), nodes[2].Status().CatchingUp)
	}
}
