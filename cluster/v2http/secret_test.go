package v2http

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth"
)

// TestInternalKeysNodeOnly: Cairn's own keyspace (/_cairn) and the
// snapshot endpoint, for every identity with authorization off and on.
// Only node identities touch /_cairn, root included in the refusal; a
// listing or recursive watch of "/" never shows it; a recursive delete of
// "/" is refused for everyone (root is read only) and leaves it in place.
// A snapshot is a node's, or root's with authorization on.
func TestInternalKeysNodeOnly(t *testing.T) {
	const refused = 110 // etcd's 401 "Insufficient credentials", nothing changed
	type who struct {
		id   string
		node bool
		// nothing: an unreadable identity, which may do nothing with
		// authorization on.
		nothing bool
	}
	ids := []who{
		{id: "client/root"},  // the root user once auth is on
		{id: "client/plain"}, // a guest with full access once auth is on
		{id: ""},             // no certificate
		{id: "legacy-cn"},    // a CN that is not a node's
		{id: "spiffe://evil.example/client/root", nothing: true},
		{id: "node/n1", node: true},
		{id: "peer-1", node: true}, // a CN allowed as a node's
	}
	type req struct {
		name, method, target, body string
		code                       int    // the allowed answer
		forNonNode                 int    // refused, or the answer everyone gets
		hides                      string // must not appear in an allowed body
	}
	reqs := []req{
		{"get", "GET", "/v2/keys/_cairn/certmagic/k", "", 200, refused, ""},
		{"head", "HEAD", "/v2/keys/_cairn/certmagic/k", "", 200, refused, ""},
		{"get the prefix", "GET", "/v2/keys/_cairn", "", 200, refused, ""},
		{"recursive get of the prefix", "GET", "/v2/keys/_cairn?recursive=true", "", 200, refused, ""},
		{"trailing slash", "GET", "/v2/keys/_cairn/certmagic/k/", "", 200, refused, ""},
		{"stale get", "GET", "/v2/keys/_cairn/certmagic/k?stale=true", "", 200, refused, ""},
		{"set", "PUT", "/v2/keys/_cairn/certmagic/k", "value=x", 200, refused, ""},
		{"create", "PUT", "/v2/keys/_cairn/new?prevExist=false", "value=x", 201, refused, ""},
		{"CAS", "PUT", "/v2/keys/_cairn/certmagic/k?prevValue=key", "value=x", 200, refused, ""},
		{"in-order create", "POST", "/v2/keys/_cairn/queue", "value=x", 201, refused, ""},
		{"delete", "DELETE", "/v2/keys/_cairn/certmagic/k", "", 200, refused, ""},
		{"recursive delete of the prefix", "DELETE", "/v2/keys/_cairn?recursive=true", "", 200, refused, ""},
		{"watch", "GET", "/v2/keys/_cairn/certmagic/k?wait=true&waitIndex=1", "", 200, refused, ""},
		{"recursive watch of the prefix", "GET", "/v2/keys/_cairn?wait=true&recursive=true&waitIndex=1", "", 200, refused, ""},
		// Parents: the store hides /_cairn from everyone, node included.
		{"list /", "GET", "/v2/keys/", "", 200, 200, "_cairn"},
		{"recursive get of /", "GET", "/v2/keys/?recursive=true", "", 200, 200, "_cairn"},
		{"recursive watch of /", "GET", "/v2/keys/?wait=true&recursive=true&waitIndex=1", "", 200, 200, "_cairn"},
		{"recursive delete of /", "DELETE", "/v2/keys/?recursive=true", "", 400, 400, ""}, // 107 Root is read only,
	}
	for _, on := range []bool{false, true} {
		for _, c := range ids {
			for _, rq := range reqs {
				name := "auth off"
				if on {
					name = "auth on"
				}
				name += "/" + c.id + "/" + rq.name
				h, fc := newTestHandler(t, store.Config{}, func(cfg *Config) {
					cfg.AllowedNodeCNs = []string{"peer-1"}
				})
				if on {
					// The guest keeps full access: only the /_cairn rule refuses.
					mustCode(t, "root user", doAs(h, "", "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`), 201)
					mustCode(t, "enable", doAs(h, "", "PUT", "/v2/auth/enable", ""), 200)
				}
				fc.put(t, "/_cairn/certmagic/k", "key")
				fc.put(t, "/visible", "v")
				before := fc.st.Index()
				w := doAs(h, c.id, rq.method, rq.target, rq.body)
				want := rq.code
				if !c.node {
					want = rq.forNonNode
				}
				if on && c.nothing {
					want = refused
				}
				if want == refused {
					body := keyNoAuth
					if rq.method == "HEAD" {
						body = ""
					}
					if w.Code != 401 || w.Body.String() != body {
						t.Errorf("%s: %d %q, want 401 %s", name, w.Code, w.Body, keyNoAuth)
					}
					if fc.st.Index() != before {
						t.Errorf("%s: refused, yet the store changed", name)
					}
					continue
				}
				if w.Code != want {
					t.Errorf("%s: %d %q, want %d", name, w.Code, w.Body, want)
				}
				if rq.hides != "" && strings.Contains(w.Body.String(), rq.hides) {
					t.Errorf("%s: the answer shows %s: %s", name, rq.hides, w.Body)
				}
				if rq.method == "DELETE" && strings.HasPrefix(rq.target, "/v2/keys/?") {
					if _, err := fc.st.Get("/_cairn/certmagic/k", false, false, testNow); err != nil {
						t.Errorf("%s: /_cairn is gone: %v", name, err)
					}
				}
			}
		}
	}
}

// TestInternalWatchStream: a stream watch of "/" delivers no /_cairn
// event to anyone; a node's watch of /_cairn gets them.
func TestInternalWatchStream(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	srv := identityServer(t, h)
	_, client := openWatchAs(t, srv, "client/plain", "/v2/keys/?wait=true&recursive=true&stream=true")
	_, node := openWatchAs(t, srv, "node/n1", "/v2/keys/_cairn?wait=true&recursive=true&stream=true")
	poll.Until(t, waitTimeout, "the watchers", func() bool { return fc.st.WatcherCount() == 2 })
	secret := fc.put(t, "/_cairn/certmagic/k", "key")
	visible := fc.put(t, "/visible", "v")
	if got := readEvent(t, client); got.Node.Key != visible.Node.Key {
		t.Errorf("client watch of /: event %s, want %s", got.Node.Key, visible.Node.Key)
	}
	if got := readEvent(t, node); got.Node.Key != secret.Node.Key {
		t.Errorf("node watch of /_cairn: event %s, want %s", got.Node.Key, secret.Node.Key)
	}
}

// TestWatchVisibleInternal: the last filter of a watch, whatever the
// store lets through: internal events go to node identities only.
func TestWatchVisibleInternal(t *testing.T) {
	root := (&tlsauth.Policy{}).Anonymous() // auth off: everyone is root
	ev := &store.Event{Action: store.ActionSet, Node: &store.NodeExtern{Key: "/_cairn/x"}}
	if watchVisible(root, false, ev) {
		t.Error("a root non-node sees an internal event")
	}
	if !watchVisible(root, true, ev) {
		t.Error("a node does not see an internal event")
	}
}

// TestSnapshotNodeOnly: a snapshot holds /_cairn's private keys. With
// authorization off only node identities get one; with it on, root too.
func TestSnapshotNodeOnly(t *testing.T) {
	for _, on := range []bool{false, true} {
		h, _ := newTestHandler(t, store.Config{}, func(c *Config) {
			c.Cluster = failingSnapshotter{c.Cluster.(*fakeCluster)}
			c.AllowedNodeCNs = []string{"peer-1"}
		})
		if on {
			mustCode(t, "root user", doAs(h, "", "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`), 201)
			mustCode(t, "enable", doAs(h, "", "PUT", "/v2/auth/enable", ""), 200)
		}
		for _, tt := range []struct {
			id          string
			off, withOn int // 500: allowed (the fake backup fails), 401: refused
		}{
			{"client/root", 401, 500},
			{"client/plain", 401, 401},
			{"", 401, 401},
			{"legacy-cn", 401, 401},
			{"spiffe://evil.example/client/root", 401, 401},
			{"node/n1", 500, 500},
			{"peer-1", 500, 500},
		} {
			want := tt.off
			if on {
				want = tt.withOn
			}
			w := doAs(h, tt.id, http.MethodGet, snapshotPath, "")
			if w.Code != want || (want == 401 && w.Body.String() != noAuth) {
				t.Errorf("auth on=%v, %q: %d %s, want %d", on, tt.id, w.Code, w.Body, want)
			}
		}
	}
}
