package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// TestDiscover: Config.Discover is asked once by a node without raft
// state, with the node's ID, and its peers form one cluster as --peers
// would; its error fails New and leaves the data dir usable; a node with
// raft state never asks.
func TestDiscover(t *testing.T) {
	hub := NewInmemHub()
	addrs := []string{"10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var calls atomic.Int32
	gotID := make([]uint64, 3)
	cfg := func(i int, discover func(uint64) ([]string, error)) Config {
		return Config{Name: fmt.Sprintf("n%d", i), DataDir: dirs[i], PeerAddr: addrs[i], Network: hub.Network(addrs[i]),
			HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond, Discover: discover}
	}
	shutdown := func(n *Node) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	}

	failing := errors.New("no token")
	if _, err := New(cfg(0, func(uint64) ([]string, error) { return nil, failing })); !errors.Is(err, failing) {
		t.Fatalf("New with a failing Discover: %v", err)
	}

	nodes := make([]*Node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			nodes[i], errs[i] = New(cfg(i, func(id uint64) ([]string, error) {
				calls.Add(1)
				gotID[i] = id
				return addrs, nil // its own address among them: dropped
			}))
		})
	}
	wg.Wait()
	for i, n := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		t.Cleanup(func() { shutdown(n) })
		if gotID[i] != n.ID() {
			t.Errorf("node %d: Discover got ID %x, the node has %x", i, gotID[i], n.ID())
		}
	}
	poll.Until(t, waitTimeout, "one cluster of 3", func() bool {
		for _, n := range nodes {
			if len(n.Members()) != 3 || n.Status().LeaderID == 0 {
				return false
			}
		}
		return true
	})
	if c := calls.Load(); c != 3 {
		t.Fatalf("Discover called %d times, want 3", c)
	}

	shutdown(nodes[1])
	again, err := New(cfg(1, func(uint64) ([]string, error) {
		calls.Add(1)
		return nil, errors.New("asked with raft state")
	}))
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { shutdown(again) })
	if c := calls.Load(); c != 3 {
		t.Fatalf("a restart with raft state called Discover")
	}
}
