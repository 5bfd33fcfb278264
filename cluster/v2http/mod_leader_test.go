package v2http

import (
	"net/http"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// TestModLeader: campaign, renew by repeating, observe, resign, hand over.
func TestModLeader(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	const dir = "/_mod/leader/db"
	checkResponse(t, do(h, "PUT", "/mod/v2/leader/db?name=alpha&ttl=30", ""), 200, "1")
	checkResponse(t, do(h, "GET", "/mod/v2/leader/db", ""), 200, "alpha")

	// An observer started now waits for a change.
	obs := start(t, h, "GET", "/mod/v2/leader/db?wait=true")
	waitWatchers(t, fc.st, 1)
	beta := start(t, h, "PUT", "/mod/v2/leader/db?name=beta&ttl=30")
	waitQueue(t, fc.st, dir, "alpha", "beta")
	// The leader renews by repeating its PUT: same index, no change seen.
	checkResponse(t, do(h, "PUT", "/mod/v2/leader/db?name=alpha&ttl=30", ""), 200, "1")
	if obs.answered() || beta.answered() {
		t.Fatal("a renewal looked like a change of leader")
	}
	checkResponse(t, do(h, "DELETE", "/mod/v2/leader/db?name=alpha", ""), 200, "")
	w := beta.result(t)
	mustCode(t, "beta elected", w, 200)
	got := obs.result(t)
	checkResponse(t, got, 200, "beta")
	if got.Header().Get("X-Etcd-Index") == "" || got.Header().Get("X-Etcd-Index") == "0" {
		t.Errorf("X-Etcd-Index %q", got.Header().Get("X-Etcd-Index"))
	}
	checkResponse(t, do(h, "GET", "/mod/v2/leader/db", ""), 200, "beta")

	// The last leader resigns: an observer sees "no leader" (empty).
	obs = start(t, h, "GET", "/mod/v2/leader/db?wait=true")
	waitWatchers(t, fc.st, 1)
	checkResponse(t, do(h, "DELETE", "/mod/v2/leader/db?name=beta", ""), 200, "")
	checkResponse(t, obs.result(t), 200, "")
	checkResponse(t, do(h, "GET", "/mod/v2/leader/db", ""), 200, "")
}

// TestModLeaderObserveBeforeElection: an observer of an election never
// held waits for its first leader.
func TestModLeaderObserveBeforeElection(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	obs := start(t, h, "GET", "/mod/v2/leader/new?wait=true")
	waitWatchers(t, fc.st, 1)
	mustCode(t, "campaign", do(h, "PUT", "/mod/v2/leader/new?name=first&ttl=30", ""), 200)
	checkResponse(t, obs.result(t), 200, "first")
}

// TestModLeaderObserveEnds: an observer ends with its client and with
// Handler.Close (503), and leaves no store watcher behind.
func TestModLeaderObserveEnds(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	mustCode(t, "campaign", do(h, "PUT", "/mod/v2/leader/x?name=a&ttl=30", ""), 200)
	gone := start(t, h, "GET", "/mod/v2/leader/x?wait=true")
	waitWatchers(t, fc.st, 1)
	gone.cancel()
	gone.result(t)
	waitWatchers(t, fc.st, 0)

	closed := start(t, h, "GET", "/mod/v2/leader/x?wait=true")
	waitWatchers(t, fc.st, 1)
	h.Close()
	if w := closed.result(t); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d %q", w.Code, w.Body)
	}
	waitWatchers(t, fc.st, 0)
}

// waitWatchers waits until st has n watchers registered.
func waitWatchers(t *testing.T, st *store.Store, n int) {
	t.Helper()
	poll.Until(t, waitTimeout, "store watchers to be "+itoa(n), func() bool { return st.WatcherCount() == n })
}
