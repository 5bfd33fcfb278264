package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// TestAddedMemberKeepsItsID: the ID that AddMember answers (and `cairn
// member add` prints) is the member's ID once it starts and joins.
func TestAddedMemberKeepsItsID(t *testing.T) {
	hub := NewInmemHub()
	start := func(name, addr string, peers ...string) *Node {
		n, err := New(Config{Name: name, DataDir: t.TempDir(), PeerAddr: addr, Peers: peers, Network: hub.Network(addr),
			HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.Shutdown(ctx)
		})
		return n
	}
	a := start("a", "10.0.0.1:7001")
	poll.Until(t, waitTimeout, "a leader", func() bool { return a.Status().LeaderID != 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	added, err := a.AddMember(ctx, []string{"https://10.0.0.2:7001"})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.addedMemberAt("10.0.0.2:7001"); got != added.ID {
		t.Fatalf("addedMemberAt = %x; want %x", got, added.ID)
	}

	b := start("b", "10.0.0.2:7001", "10.0.0.1:7001")
	if b.ID() != added.ID {
		t.Fatalf("the new member took ID %x; want the added %x", b.ID(), added.ID)
	}
	poll.Until(t, waitTimeout, "b to join under its added ID", func() bool {
		for _, m := range a.Members() {
			if m.ID == added.ID && m.Name == "b" {
				return len(a.Members()) == 2
			}
		}
		return false
	})
	if got := a.addedMemberAt("10.0.0.2:7001"); got != 0 {
		t.Errorf("addedMemberAt after the join = %x; want 0", got)
	}
}
