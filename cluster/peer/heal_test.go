package peer

import (
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// answerVotes answers every RequestVote that reaches n's raft transport,
// granting it, until the test ends.
func answerVotes(t *testing.T, n *Network) {
	t.Helper()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case rpc := <-n.Transport().Consumer():
				rpc.Respond(&raft.RequestVoteResponse{Granted: true, Term: 1}, nil)
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
}

func vote(tr raft.Transport, target string) error {
	var resp raft.RequestVoteResponse
	return tr.RequestVote("b", raft.ServerAddress(target), &raft.RequestVoteRequest{Term: 1}, &resp)
}

// TestRaftConnectionsHeal: a peer restarted at the same address leaves
// raft's pooled connections to it dead. The first RPC over one fails with
// raft's bare transport; over the Network's it is sent again on a fresh
// connection, so a restarted member costs no election round.
func TestRaftConnectionsHeal(t *testing.T) {
	p := tlstest.NewPKI(t)
	mA := peerMaterial(t, p.CA, p.CAFile, p.Dir, "a", true)
	mB := peerMaterial(t, p.CA, p.CAFile, p.Dir, "b", true)
	a := newTestNetwork(t, mA, "127.0.0.1:0")
	b := newTestNetwork(t, mB, "127.0.0.1:0")
	answerVotes(t, b)
	addr := b.Addr().String()

	restart := func() {
		t.Helper()
		b.Close()
		b = newTestNetwork(t, mB, addr)
		answerVotes(t, b)
	}
	if err := vote(a.trans, addr); err != nil {
		t.Fatalf("first vote: %v", err)
	}
	restart()
	err := vote(a.trans, addr)
	t.Logf("raft's own transport after the restart: %v", err)
	if err == nil {
		t.Fatal("raft's own transport sent over its dead pooled connection without an error: the test cannot show healing")
	}

	// Pool several connections, as concurrent RPCs (an election asks
	// every peer at once, heartbeats run beside appends) do.
	var wg sync.WaitGroup
	errs := make(chan error, 3*raftMaxPool)
	for range 3 * raftMaxPool {
		wg.Go(func() { errs <- vote(a.Transport(), addr) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("vote: %v", err)
		}
	}
	restart()
	if err := vote(a.Transport(), addr); err != nil {
		t.Fatalf("vote after the peer restarted: %v (want it sent again on a fresh connection)", err)
	}
}
