package v2http

import (
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest"
)

// TestModLockThreeNodes: the lock on a 3-node in-process cluster. A waiter
// on one follower gets the lock released through the leader; the fencing
// token keeps growing across a leader change and a member's restart; a
// holder that stops renewing loses the lock to a waiter on another member
// when its entry expires, and the waiter's heartbeats kept its own entry,
// with a TTL shorter than the wait, alive.
func TestModLockThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := clustertest.New(t, 3)
	hs := make([]*Handler, c.Len())
	handler := func(i int) {
		h, err := New(Config{Cluster: c.Node(i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hs[i] = h
	}
	for i := range hs {
		handler(i)
	}
	const dir = "/_mod/lock/fence"
	leader := c.Leader()
	f1, f2 := (leader+1)%3, (leader+2)%3

	holder := do(hs[f1], "POST", "/mod/v2/lock/fence?ttl=30&value=a", "")
	mustCode(t, "a acquires on a follower", holder, 200)
	tok := mustAtoi(t, holder.Body.String())
	waiter := start(t, hs[f2], "POST", "/mod/v2/lock/fence?ttl=30&value=b")
	waitQueue(t, c.Node(f2).Store(), dir, "a", "b")
	checkResponse(t, do(hs[leader], "DELETE", "/mod/v2/lock/fence?index="+itoa(tok), ""), 200, "")
	w := waiter.result(t)
	mustCode(t, "b gets it on the other follower", w, 200)
	tok = checkGrows(t, tok, w.Body.String())

	// The leader goes; the lock and its token survive.
	c.Stop(leader)
	leader = c.Leader()
	checkResponse(t, do(hs[leader], "GET", "/mod/v2/lock/fence", ""), 200, "b")
	checkResponse(t, do(hs[leader], "DELETE", "/mod/v2/lock/fence?value=b", ""), 200, "")
	w = do(hs[leader], "POST", "/mod/v2/lock/fence?ttl=3&value=c", "")
	mustCode(t, "c after the leader change", w, 200)
	tok = checkGrows(t, tok, w.Body.String())

	// c stops renewing: at its expiry, d (waiting on the other member)
	// gets the lock. d's own TTL is shorter than its wait: its
	// heartbeats keep its entry alive meanwhile.
	rest := f1
	if rest == leader {
		rest = f2
	}
	waiter = start(t, hs[rest], "POST", "/mod/v2/lock/fence?ttl=1&value=d")
	w = waiter.result(t)
	mustCode(t, "d after c's TTL", w, 200)
	tok = checkGrows(t, tok, w.Body.String())
	if got := gaugeValue(t, hs[rest], `cairn_mod_abandoned_total{module="lock",reason="lost"}`); got != "" {
		t.Errorf("a wait lost its entry: %s", got)
	}

	// The old leader comes back: through it, the token still grows
	// (e waits for d, which does not renew, to lapse).
	stopped := 3 - leader - rest
	c.Restart(stopped)
	handler(stopped)
	w = do(hs[stopped], "POST", "/mod/v2/lock/fence?ttl=30&value=e", "")
	mustCode(t, "e through the restarted member", w, 200)
	checkGrows(t, tok, w.Body.String())
}

// checkGrows fails unless token next is above prev; it returns next.
func checkGrows(t *testing.T, prev int, next string) int {
	t.Helper()
	n := mustAtoi(t, next)
	if n <= prev {
		t.Fatalf("fencing token %d after %d: it must grow", n, prev)
	}
	return n
}
