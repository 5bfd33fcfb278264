package v2http

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// TestAuthKeys is one table over every kind of role rule on /v2/keys: a
// refusal is etcd's 110 (HTTP 401, index 0) and changes nothing.
func TestAuthKeys(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	setupPolicy(t, h)
	for k, v := range map[string]string{
		"/config/a": "1", "/one": "1", "/logs/1": "x", "/public/p": "p", "/secret": "s",
		webPrefix + "/i-1": `{"host":"10.0.0.1"}`, "/skydns/internal/cairn/db/i-1": `{"host":"10.0.0.2"}`,
	} {
		fc.put(t, k, v)
	}
	tests := []struct {
		name, id, method, target, body string
		code                           int // 110: refused
	}{
		// Exact key: read and write /one only, never recursively.
		{"exact: get", "client/exact", "GET", "/v2/keys/one", "", 200},
		{"exact: head", "client/exact", "HEAD", "/v2/keys/one", "", 200},
		{"exact: set", "client/exact", "PUT", "/v2/keys/one", "value=2", 200},
		{"exact: recursive get", "client/exact", "GET", "/v2/keys/one?recursive=true", "", 110},
		{"exact: below", "client/exact", "PUT", "/v2/keys/one/two", "value=2", 110},
		{"exact: other key", "client/exact", "GET", "/v2/keys/config/a", "", 110},
		{"exact: similar key", "client/exact", "PUT", "/v2/keys/one2", "value=2", 110},

		// Read-only prefix /config/*.
		{"ro: get", "client/reader", "GET", "/v2/keys/config/a", "", 200},
		{"ro: the directory", "client/reader", "GET", "/v2/keys/config", "", 200},
		{"ro: the directory, trailing slash", "client/reader", "GET", "/v2/keys/config/", "", 200},
		{"ro: recursive", "client/reader", "GET", "/v2/keys/config?recursive=true", "", 200},
		{"ro: quorum and stale reads alike", "client/reader", "GET", "/v2/keys/config/a?quorum=true", "", 200},
		{"ro: stale read", "client/reader", "GET", "/v2/keys/config/a?stale=true", "", 200},
		{"ro: missing key under the prefix", "client/reader", "GET", "/v2/keys/config/nope", "", 404},
		{"ro: set", "client/reader", "PUT", "/v2/keys/config/a", "value=2", 110},
		{"ro: delete", "client/reader", "DELETE", "/v2/keys/config/a", "", 110},
		{"ro: the root", "client/reader", "GET", "/v2/keys/", "", 110},
		{"ro: the root, recursive", "client/reader", "GET", "/v2/keys/?recursive=true", "", 110},
		{"ro: another key", "client/reader", "GET", "/v2/keys/secret", "", 110},

		// Write-only prefix /logs/*.
		{"wo: set", "client/writer", "PUT", "/v2/keys/logs/2", "value=x", 201},
		{"wo: in-order create", "client/writer", "POST", "/v2/keys/logs", "value=x", 201},
		{"wo: CAS", "client/writer", "PUT", "/v2/keys/logs/1?prevValue=x", "value=y", 200},
		{"wo: get", "client/writer", "GET", "/v2/keys/logs/1", "", 110},
		{"wo: elsewhere", "client/writer", "PUT", "/v2/keys/config/a", "value=2", 110},
		{"wo: delete", "client/writer", "DELETE", "/v2/keys/logs/1", "", 200},
		{"wo: recursive delete of its directory", "client/writer", "DELETE", "/v2/keys/logs?recursive=true", "", 200},

		// A service below its own prefix: register, heartbeat, deregister.
		{"svc: register", "client/web", "PUT", "/v2/keys" + webPrefix + "/i-2", "value=x&ttl=30", 201},
		{"svc: heartbeat", "client/web", "PUT", "/v2/keys" + webPrefix + "/i-2?refresh=true&prevExist=true&ttl=30", "", 200},
		{"svc: another service", "client/web", "PUT", "/v2/keys/skydns/internal/cairn/db/i-1", "value=x", 110},
		{"svc: a longer name", "client/web", "PUT", "/v2/keys/skydns/internal/cairn/webapp/i-1", "value=x", 110},
		{"svc: the parent", "client/web", "DELETE", "/v2/keys/skydns/internal/cairn?recursive=true", "", 110},
		{"svc: read", "client/web", "GET", "/v2/keys" + webPrefix + "/i-1", "", 110},
		{"svc: deregister", "client/web", "DELETE", "/v2/keys" + webPrefix + "/i-2", "", 200},

		// Guests: no user entry, no certificate, an unmatched CN.
		{"guest: read", "client/stranger", "GET", "/v2/keys/public/p", "", 200},
		{"guest: write", "client/stranger", "PUT", "/v2/keys/public/p", "value=x", 110},
		{"guest: elsewhere", "client/stranger", "GET", "/v2/keys/config/a", "", 110},
		{"anonymous: read", "", "GET", "/v2/keys/public/p", "", 200},
		{"anonymous: elsewhere", "", "GET", "/v2/keys/secret", "", 110},
		{"CN without a user: guest", "legacy", "GET", "/v2/keys/public/p", "", 200},
		// A user with no roles is not a guest.
		{"no roles", "client/none", "GET", "/v2/keys/public/p", "", 110},
		// A certificate whose identity is unreadable may do nothing.
		{"foreign trust domain", "spiffe://evil.example/client/root", "GET", "/v2/keys/public/p", "", 110},
		{"malformed SPIFFE ID", "spiffe://cairn.internal/workload/x", "GET", "/v2/keys/public/p", "", 110},

		// Root and nodes may do everything; Cairn's internal keys are
		// the nodes' alone.
		{"root: anything", rootID, "PUT", "/v2/keys/secret", "value=t", 200},
		{"root: internal keys", rootID, "GET", "/v2/keys" + authPolicyKey, "", 110},
		{"node: internal keys", "node/n1", "GET", "/v2/keys" + authPolicyKey, "", 200},
		{"node: anything", "node/n1", "GET", "/v2/keys/?recursive=true", "", 200},
	}
	for _, tt := range tests {
		before := fc.st.Index()
		w := doAs(h, tt.id, tt.method, tt.target, tt.body)
		if tt.code == 110 {
			if w.Code != 401 || w.Body.String() != keyNoAuth || w.Header().Get("X-Etcd-Cluster-ID") != testClusterID || w.Header().Get("X-Etcd-Index") != "0" {
				t.Errorf("%s: %d %q %v, want 401 %s", tt.name, w.Code, w.Body, w.Header(), keyNoAuth)
			}
			if after := fc.st.Index(); after != before {
				t.Errorf("%s: refused, yet the store index moved %d -> %d", tt.name, before, after)
			}
			continue
		}
		if w.Code != tt.code {
			t.Errorf("%s: %d %q, want %d", tt.name, w.Code, w.Body, tt.code)
		}
	}
}

// TestAuthInternalKeys: Cairn's keys under /_cairn are node-only even when
// the guest role grants everything (etcd's default guest after enabling).
func TestAuthInternalKeys(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	mustCode(t, "root user", doAs(h, "", "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`), 201)
	mustCode(t, "enable", doAs(h, "", "PUT", "/v2/auth/enable", ""), 200)
	fc.put(t, "/a", "1")
	for _, rq := range []struct{ method, target, body string }{
		{"GET", "/v2/keys" + authPolicyKey, ""},
		{"GET", "/v2/keys/_cairn?recursive=true", ""},
		{"PUT", "/v2/keys" + authPolicyKey, "value={}"},
		{"PUT", "/v2/keys/_cairn/other", "value=x"},
		{"PUT", "/v2/keys/_cairn?dir=true&prevExist=true&ttl=1", ""},
		{"DELETE", "/v2/keys/_cairn?recursive=true", ""},
		{"GET", "/v2/keys/_cairn/auth?wait=true&recursive=true", ""},
	} {
		before := fc.st.Index()
		checkResponse(t, doAs(h, "client/guest", rq.method, rq.target, rq.body), 401, keyNoAuth)
		if fc.st.Index() != before {
			t.Errorf("%s %s changed the store", rq.method, rq.target)
		}
	}
	// Everything else is the guest's, and listings never show /_cairn.
	w := doAs(h, "client/guest", "GET", "/v2/keys/?recursive=true", "")
	if w.Code != 200 || strings.Contains(w.Body.String(), "_cairn") || !strings.Contains(w.Body.String(), `"/a"`) {
		t.Errorf("guest listing: %d %s", w.Code, w.Body)
	}
	mustCode(t, "guest write", doAs(h, "client/guest", "PUT", "/v2/keys/b", "value=x"), 201)
}

// TestAuthUnreadablePolicy: a stored policy that does not parse fails
// closed (only nodes may act) until a node repairs it.
func TestAuthUnreadablePolicy(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	setupPolicy(t, h)
	fc.put(t, authPolicyKey, "{not json")
	checkResponse(t, doAs(h, rootID, "GET", "/v2/keys/public/p", ""), 401, keyNoAuth)
	checkResponse(t, doAs(h, "", "GET", "/v2/keys/public/p", ""), 401, keyNoAuth)
	checkResponse(t, doAs(h, rootID, "GET", "/v2/auth/users", ""), 401, noAuth)
	checkResponse(t, doAs(h, "", "GET", "/v2/auth/enable", ""), 200, `{"enabled":true}`+"\n")
	w := doAs(h, "node/n1", "GET", "/v2/auth/users", "")
	if w.Code != 500 || !strings.Contains(w.Body.String(), "is unreadable") {
		t.Errorf("users with an unreadable policy: %d %s", w.Code, w.Body)
	}
	// The repair: a node deletes the key, which disables authorization.
	mustCode(t, "node deletes", doAs(h, "node/n1", "DELETE", "/v2/keys"+authPolicyKey, ""), 200)
	checkResponse(t, doAs(h, "", "GET", "/v2/auth/enable", ""), 200, `{"enabled":false}`+"\n")
	mustCode(t, "anyone again", doAs(h, "", "PUT", "/v2/keys/x", "value=1"), 201)
}

// TestAuthWatchFilter: a watch only delivers what its client may read.
func TestAuthWatchFilter(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	setupPolicy(t, h)
	srv := identityServer(t, h)

	// client/reader reads /config/* and the web service's prefix: a
	// recursive stream on / sees those, nothing else.
	resp, br := openWatchAs(t, srv, "client/reader", "/v2/keys/?wait=true&recursive=true&stream=true")
	if resp.StatusCode != 200 {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	poll.Until(t, waitTimeout, "the watcher", func() bool { return fc.st.WatcherCount() == 1 })
	fc.put(t, "/other/x", "1")
	fc.put(t, "/skydns/internal/cairn/db/i-1", "db")
	c1 := fc.put(t, "/config/b", "2")
	fc.put(t, "/skydns/internal/cairn/webapp/i-1", "no")
	w1 := fc.put(t, webPrefix+"/i-9", "web")
	fc.put(t, "/secret", "s")
	for _, want := range []*store.Event{c1, w1} {
		if got := readEvent(t, br); got.Node.Key != want.Node.Key || got.Node.ModifiedIndex != want.Node.ModifiedIndex {
			t.Fatalf("event %s@%d, want %s@%d", got.Node.Key, got.Node.ModifiedIndex, want.Node.Key, want.Node.ModifiedIndex)
		}
	}
	// Removing a directory above the readable prefix is visible: it removed
	// readable keys.
	mustCode(t, "rm skydns", doAs(h, rootID, "DELETE", "/v2/keys/skydns?recursive=true", ""), 200)
	if got := readEvent(t, br); got.Action != "delete" || got.Node.Key != "/skydns" {
		t.Fatalf("directory removal: %+v", got)
	}
	fc.put(t, "/other/y", "1")
	last := fc.put(t, "/config/c", "3")
	if got := readEvent(t, br); got.Node.Key != last.Node.Key {
		t.Fatalf("event %s, want %s", got.Node.Key, last.Node.Key)
	}

	// A one-shot watch returns the first event it may see, live or from
	// history.
	_, br1 := openWatchAs(t, srv, "client/reader", "/v2/keys/?wait=true&recursive=true")
	poll.Until(t, waitTimeout, "the one-shot watcher", func() bool { return fc.st.WatcherCount() == 2 })
	fc.put(t, "/other/z", "1")
	live := fc.put(t, "/config/d", "4")
	body, err := io.ReadAll(br1)
	if err != nil || string(body) != eventLine(t, live) {
		t.Errorf("one-shot: %q %v, want %q", body, err, eventLine(t, live))
	}
	w := doAs(h, "client/reader", "GET", "/v2/keys/?wait=true&recursive=true&waitIndex=1", "")
	if w.Code != 200 || w.Body.String() != eventLine(t, c1) {
		t.Errorf("one-shot from history: %d %s", w.Code, w.Body)
	}

	if got := readEvent(t, br); got.Node.Key != live.Node.Key {
		t.Fatalf("stream: event %s, want %s", got.Node.Key, live.Node.Key)
	}

	// Watches the client may not open at all.
	checkResponse(t, doAs(h, "client/writer", "GET", "/v2/keys/logs?wait=true&recursive=true", ""), 401, keyNoAuth)
	checkResponse(t, doAs(h, "client/reader", "GET", "/v2/keys/other?wait=true&recursive=true", ""), 401, keyNoAuth)
	checkResponse(t, doAs(h, "client/reader", "GET", "/v2/keys/?wait=true", ""), 401, keyNoAuth)

	// Revoking the role ends the open stream at its next event.
	mustCode(t, "revoke", doAs(h, rootID, "PUT", "/v2/auth/users/client/reader", `{"user":"client/reader","revoke":["ro"]}`), 200)
	fc.put(t, "/config/e", "5")
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after revoke: %q %v, want the stream to end", rest, err)
	}
}

// TestAuthWatchRoot: root's watches are not filtered (and cost nothing
// more than before).
func TestAuthWatchRoot(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	setupPolicy(t, h)
	srv := identityServer(t, h)
	_, br := openWatchAs(t, srv, rootID, "/v2/keys/?wait=true&recursive=true&stream=true")
	poll.Until(t, waitTimeout, "the watcher", func() bool { return fc.st.WatcherCount() == 1 })
	a := fc.put(t, "/other/x", "1")
	b := fc.put(t, "/secret", "2")
	for _, want := range []*store.Event{a, b} {
		if got := readEvent(t, br); got.Node.Key != want.Node.Key {
			t.Fatalf("event %s, want %s", got.Node.Key, want.Node.Key)
		}
	}
}

// TestAuthTrustDomain: identities are read in Config.TrustDomain, and
// Config.AllowedNodeCNs makes CN-only certificates nodes (root).
func TestAuthTrustDomain(t *testing.T) {
	if _, err := New(Config{Cluster: newFakeCluster(store.Config{}), TrustDomain: "Not A Domain"}); err == nil {
		t.Error("New accepted an invalid trust domain")
	}
	h, _ := newTestHandler(t, store.Config{}, func(c *Config) {
		c.TrustDomain = "example.org"
		c.AllowedNodeCNs = []string{"peer-1"}
	})
	mustCode(t, "root user", doAs(h, "", "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`), 201)
	mustCode(t, "enable", doAs(h, "", "PUT", "/v2/auth/enable", ""), 200)
	mustCode(t, "guest role", doAs(h, "spiffe://example.org/client/root", "PUT", "/v2/auth/roles/guest",
		`{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}`), 200)
	for _, tt := range []struct {
		id   string
		code int
	}{
		{"spiffe://example.org/client/root", 200},
		{"spiffe://example.org/node/n1", 200},
		{"peer-1", 200},                        // an allowed node CN
		{"peer-2", 401},                        // any other CN: a guest
		{"client/root", 401},                   // cairn.internal: another trust domain
		{"spiffe://example.org/client/x", 401}, // a guest
	} {
		if w := doAs(h, tt.id, "GET", "/v2/auth/users", ""); w.Code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.id, w.Code, w.Body, tt.code)
		}
	}
}

// The cost of authorization per request: off, and on for a user with a
// few roles (the policy is cached; a write re-reads one key).

func BenchmarkGetAuthOff(b *testing.B) { benchmarkAuthGet(b, false) }
func BenchmarkGetAuthOn(b *testing.B)  { benchmarkAuthGet(b, true) }

func benchmarkAuthGet(b *testing.B, on bool) {
	h, fc := newTestHandler(b, store.Config{}, nil)
	fc.put(b, "/config/key", strings.Repeat("v", 100))
	if on {
		for _, s := range []struct{ target, body string }{
			{"/v2/auth/roles/ro", `{"role":"ro","permissions":{"kv":{"read":["/other/*","/config/*"]}}}`},
			{"/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`},
			{"/v2/auth/users/client/reader", `{"user":"client/reader","roles":["ro"]}`},
			{"/v2/auth/enable", ""},
		} {
			if w := doAs(h, rootID, "PUT", s.target, s.body); w.Code >= 300 {
				b.Fatalf("%s: %d %s", s.target, w.Code, w.Body)
			}
		}
	}
	r := withIdentity(httptest.NewRequest("GET", "/v2/keys/config/key", nil), "client/reader")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		r.Form, r.PostForm = nil, nil
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkPolicyAfterWrite is the policy check right after an unrelated
// write: the store index moved, so the policy key is read again (but not
// parsed).
func BenchmarkPolicyAfterWrite(b *testing.B) {
	h, fc := newTestHandler(b, store.Config{}, nil)
	if w := doAs(h, "", "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`); w.Code != 201 {
		b.Fatal(w.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		fc.st.Apply(&store.Request{Method: store.MethodPut, Path: "/x", Value: "1"}, testNow)
		h.policy.get(fc.st)
	}
}

// TestAuthConnIdentity: with ConnContext (the server's), a connection's
// client identity is read once and kept for its later requests, each
// connection its own: requests alternating between a limited client's
// connection and root's get each their own answer.
func TestAuthConnIdentity(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	setupPolicy(t, h)
	fc.put(t, "/one", "1")
	fc.put(t, "/secret", "s")
	conns := map[string]context.Context{}
	for _, id := range []string{"client/exact", rootID} {
		conns[id] = ConnContext(context.Background(), nil)
	}
	as := func(id, target string) int {
		r := withIdentity(httptest.NewRequest("GET", target, nil), id).WithContext(conns[id])
		return serve(h, r).Code
	}
	for range 3 {
		if c := as("client/exact", "/v2/keys/one"); c != 200 {
			t.Errorf("client/exact: GET /one: %d, want 200", c)
		}
		if c := as(rootID, "/v2/keys/secret"); c != 200 {
			t.Errorf("root: GET /secret: %d, want 200", c)
		}
		if c := as("client/exact", "/v2/keys/secret"); c != 401 {
			t.Errorf("client/exact: GET /secret: %d, want 401 (root's connection's identity leaked?)", c)
		}
	}
	for id, ctx := range conns {
		v := ctx.Value(connIdentityKey{}).(*connIdentity).v.Load()
		if v == nil || v.err != nil || v.id.String() != id {
			t.Errorf("connection of %s keeps %+v", id, v)
		}
	}
}
