package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/disk"
)

// A member whose start fails after it joined withdraws: the cluster is
// left with the members it had, and the data dir without the raft state
// the failed start made, so that the same start can run again.
func TestWithdrawUndoesAJoin(t *testing.T) {
	hub := NewInmemHub()
	start := func(name, dir, addr string, peers ...string) *Node {
		n, err := New(Config{Name: name, DataDir: dir, PeerAddr: addr, Peers: peers, Network: hub.Network(addr),
			HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shutdown(t, n) })
		return n
	}
	a := start("a", t.TempDir(), "10.0.0.1:7001")
	poll.Until(t, waitTimeout, "a leader", func() bool { return a.Status().LeaderID != 0 })

	dir := t.TempDir()
	b := start("b", dir, "10.0.0.2:7001", "10.0.0.1:7001")
	poll.Until(t, waitTimeout, "b to join", func() bool { return len(a.Members()) == 2 && b.hasConfiguration() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	shutdown(t, b)
	if ms := a.Members(); len(ms) != 1 || ms[0].ID != a.ID() {
		t.Fatalf("members after the withdrawal: %+v; want a alone", ms)
	}
	for _, name := range []string{metaFile, disk.LogFile, disk.SnapshotsDir} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s after the withdrawal: %v; want it deleted", name, err)
		}
	}
	// The data dir serves again: a start on it joins as a new member (at
	// another address: the in-memory hub keeps a's link to the first).
	b = start("b", dir, "10.0.0.3:7001", "10.0.0.1:7001")
	poll.Until(t, waitTimeout, "b to join again", func() bool { return len(a.Members()) == 2 && b.hasConfiguration() })
	shutdown(t, b)

	// A member that restarts from its data dir is left as it is.
	b = start("b", dir, "10.0.0.3:7001", "10.0.0.1:7001")
	if err := b.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	shutdown(t, b)
	if len(a.Members()) != 2 {
		t.Fatalf("a restarted member's withdrawal changed the members: %+v", a.Members())
	}
	if _, err := os.Stat(filepath.Join(dir, disk.LogFile)); err != nil {
		t.Fatalf("a restarted member's withdrawal touched its raft.db: %v", err)
	}
}

func shutdown(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}
