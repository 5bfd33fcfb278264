package v2http

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// catchingUp is a fake cluster member that restarted and has not applied
// again what it served before while behind is set.
type catchingUp struct {
	*fakeCluster
	behind atomic.Bool
}

func (c *catchingUp) CaughtUp() bool { return !c.behind.Load() }

// TestStaleReadWhileCatchingUp: a member that restarted behind what it
// served before refuses stale reads (etcd error 300, which clients take
// as "try another member") and reports why in /health; linearizable
// reads wait for the leader as always; once caught up, stale reads are
// served.
func TestStaleReadWhileCatchingUp(t *testing.T) {
	fc := newFakeCluster(store.Config{})
	c := &catchingUp{fakeCluster: fc}
	c.behind.Store(true)
	h, err := New(Config{Cluster: c, Now: func() time.Time { return testNow }, CairnVersion: "test-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	fc.put(t, "/a", "1")
	fc.set(func(f *fakeCluster) {
		f.status.CatchingUp = "restarted and catching up: applied index 1 of the 9 applied before the stop"
	})

	w := do(h, "GET", "/v2/keys/a?stale=true", "")
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"errorCode":300`) || !strings.Contains(w.Body.String(), "read from another member") {
		t.Fatalf("stale read while catching up: %d %s", w.Code, w.Body)
	}
	if w := do(h, "GET", "/v2/keys/a", ""); w.Code != 200 {
		t.Fatalf("linearizable read while catching up: %d %s", w.Code, w.Body)
	}
	checkResponse(t, do(h, "GET", "/health", ""), 503,
		`{"health":"false","reason":"restarted and catching up: applied index 1 of the 9 applied before the stop"}`)

	c.behind.Store(false)
	fc.set(func(f *fakeCluster) { f.status.CatchingUp = "" })
	if w := do(h, "GET", "/v2/keys/a?stale=true", ""); w.Code != 200 {
		t.Fatalf("stale read once caught up: %d %s", w.Code, w.Body)
	}
}
