package v2http

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// The runtime profiles are served to the identities that may take a
// snapshot, and to no one else.
func TestDebugProfiles(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	// Authorization off: every client certificate is root, so only nodes.
	for _, id := range []string{"client/root", ""} {
		if w := doAs(h, id, http.MethodGet, "/debug/pprof/heap", ""); w.Code != http.StatusUnauthorized || w.Body.String() != noAuth {
			t.Errorf("%q: %d %s, want 401 %s", id, w.Code, w.Body, noAuth)
		}
	}
	w := doAs(h, "node/n1", http.MethodGet, "/debug/pprof/", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "goroutine") {
		t.Fatalf("index: %d %.200s", w.Code, w.Body)
	}
	w = doAs(h, "node/n1", http.MethodGet, "/debug/pprof/goroutine?debug=1", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "goroutine profile: total") {
		t.Fatalf("goroutine profile: %d %.200s", w.Code, w.Body)
	}
	w = doAs(h, "node/n1", http.MethodGet, "/debug/pprof/cmdline", "")
	if w.Code != http.StatusOK || w.Body.Len() == 0 {
		t.Fatalf("cmdline: %d %q", w.Code, w.Body)
	}
	if w = doAs(h, "node/n1", http.MethodGet, "/debug/pprof", ""); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/debug/pprof/" {
		t.Errorf("bare path: %d, Location %q", w.Code, w.Header().Get("Location"))
	}

	// Authorization on: root and nodes.
	setupPolicy(t, h)
	for _, id := range []string{"client/web", "client/stranger"} {
		if w := doAs(h, id, http.MethodGet, "/debug/pprof/heap", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%q: %d, want 401", id, w.Code)
		}
	}
	for _, id := range []string{rootID, "node/n2"} {
		mustCode(t, id, doAs(h, id, http.MethodGet, "/debug/pprof/heap", ""), http.StatusOK)
	}
}
