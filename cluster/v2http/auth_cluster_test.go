package v2http

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// TestAuthThreeNodes: the policy is replicated, so a change made through
// one node is enforced by every node; concurrent changes through different
// nodes are all kept (compare-and-swap with retries).
func TestAuthThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := clustertest.New(t, 3)
	hs := make([]*Handler, c.Len())
	for i := range hs {
		h, err := New(Config{Cluster: c.Node(i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hs[i] = h
	}
	mustCode(t, "root user via node 0", doAs(hs[0], "", "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`), 201)

	// Six roles created at once through all three nodes.
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Go(func() {
			name := "r" + itoa(i)
			codes[i] = doAs(hs[i%3], "", "PUT", "/v2/auth/roles/"+name, `{"role":"`+name+`","permissions":{"kv":{"write":["/`+name+`/*"]}}}`).Code
		})
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusCreated {
			t.Errorf("role r%d: %d", i, code)
		}
	}
	mustCode(t, "user via node 1", doAs(hs[1], "", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","roles":["r0"]}`), 201)
	mustCode(t, "enable via node 2", doAs(hs[2], "", "PUT", "/v2/auth/enable", ""), 200)

	// Every node enforces it, once it has applied the change (Propose
	// returns when the writing node applied it; the others may lag by a
	// heartbeat).
	for i, h := range hs {
		poll.Until(t, waitTimeout, "node "+itoa(i)+" to enforce", func() bool {
			return doAs(h, "client/web", "GET", "/v2/auth/users", "").Code == http.StatusUnauthorized
		})
		checkResponse(t, doAs(h, "client/web", "PUT", "/v2/keys/r1/x", "value=1"), 401, keyNoAuth)
		mustCode(t, "allowed on node "+itoa(i), doAs(h, "client/web", "PUT", "/v2/keys/r0/x", "value=1"), statusFor(i))
		w := doAs(h, rootID, "GET", "/v2/auth/roles", "")
		if w.Code != 200 {
			t.Fatalf("node %d roles: %d %s", i, w.Code, w.Body)
		}
	}
	if ev, err := c.Node(0).Store().Get("/r0/x", false, false, testNow); err != nil || *ev.Node.Value != "1" {
		t.Errorf("/r0/x: %v %v", ev, err)
	}
	if _, err := c.Node(0).Store().Get("/r1/x", false, false, testNow); !isKeyNotFound(err) {
		t.Errorf("/r1/x was written: %v", err)
	}
}

// statusFor is the answer to the i-th write of /r0/x: created, then set.
func statusFor(i int) int {
	if i == 0 {
		return http.StatusCreated
	}
	return http.StatusOK
}

func itoa(i int) string { return strconv.Itoa(i) }

func isKeyNotFound(err error) bool {
	e, ok := err.(*store.Error)
	return ok && e.ErrorCode == store.EcodeKeyNotFound
}
