package v2http

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// certFor returns a leaf certificate for id as tlsauth reads it:
// "client/<n>" and "node/<n>" become SPIFFE URIs of the default trust
// domain, "spiffe://..." is taken as is, anything else is a CN. The
// handler trusts r.TLS.VerifiedChains (the TLS stack verified them), so
// no signature is needed. It has the clientAuth usage, as the identity
// rule (tlsauth.ClientIdentity) wants.
func certFor(id string) *x509.Certificate {
	c := &x509.Certificate{SerialNumber: big.NewInt(int64(len(id)) + 1), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	u := id
	if strings.HasPrefix(id, "client/") || strings.HasPrefix(id, "node/") {
		u = "spiffe://" + DefaultTrustDomain + "/" + id
	}
	if strings.HasPrefix(u, "spiffe://") {
		pu, err := url.Parse(u)
		if err != nil {
			panic(err)
		}
		c.URIs = []*url.URL{pu}
		return c
	}
	c.Subject = pkix.Name{CommonName: id}
	return c
}

// withIdentity makes r come from a verified client certificate for id;
// "" leaves r without TLS (a request with no certificate).
func withIdentity(r *http.Request, id string) *http.Request {
	if id == "" {
		return r
	}
	c := certFor(id)
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c}}, PeerCertificates: []*x509.Certificate{c}}
	return r
}

// doAs is do for a client with identity id. A body starting with '{' is
// sent as JSON, any other as a form.
func doAs(h http.Handler, id, method, target, body string) *result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	switch {
	case strings.HasPrefix(body, "{"):
		r.Header.Set("Content-Type", "application/json")
	case body != "":
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return serve(h, withIdentity(r, id))
}

// identityHeader names the identity of a request to a test server
// (identityServer): plain HTTP carries no certificate.
const identityHeader = "X-Test-Identity"

func identityServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	return startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, withIdentity(r, r.Header.Get(identityHeader)))
	}))
}

// openWatchAs is openWatch for a client with identity id.
func openWatchAs(t *testing.T, srv *httptest.Server, id, target string) (*http.Response, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(identityHeader, id)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("watch %s: %v", target, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

func mustCode(t *testing.T, what string, w *result, code int) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("%s: %d %q, want %d", what, w.Code, w.Body, code)
	}
}

const (
	rootID    = "client/root"
	noAuth    = `{"message":"Insufficient credentials"}`
	webPrefix = "/skydns/internal/cairn/web"
)

// keyNoAuth is etcd's 110 answer on /v2/keys.
var keyNoAuth = errBody(110, "Insufficient credentials", 0)

// setupPolicy creates, as client/root, one role and user per kind of rule
// and enables authorization:
//
//	client/root    root
//	client/web     svc-web: write /skydns/internal/cairn/web/*
//	client/reader  ro:      read /config/* and /skydns/internal/cairn/web/*
//	client/writer  wo:      write /logs/*
//	client/exact   exact:   read and write /one
//	client/none    no roles
//	(anyone else)  guest:   read /public/*
func setupPolicy(t *testing.T, h http.Handler) {
	t.Helper()
	steps := []struct{ target, body string }{
		{"/v2/auth/roles/svc-web", `{"role":"svc-web","permissions":{"kv":{"write":["` + webPrefix + `/*"]}}}`},
		{"/v2/auth/roles/ro", `{"role":"ro","permissions":{"kv":{"read":["/config/*","` + webPrefix + `/*"]}}}`},
		{"/v2/auth/roles/wo", `{"role":"wo","permissions":{"kv":{"write":["/logs/*"]}}}`},
		{"/v2/auth/roles/exact", `{"role":"exact","permissions":{"kv":{"read":["/one"],"write":["/one"]}}}`},
		{"/v2/auth/roles/guest", `{"role":"guest","permissions":{"kv":{"read":["/public/*"]}}}`},
		{"/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`},
		{"/v2/auth/users/client/web", `{"user":"client/web","roles":["svc-web"]}`},
		{"/v2/auth/users/client/reader", `{"user":"client/reader","roles":["ro"]}`},
		{"/v2/auth/users/client/writer", `{"user":"client/writer","roles":["wo"]}`},
		{"/v2/auth/users/client/exact", `{"user":"client/exact","roles":["exact"]}`},
		{"/v2/auth/users/client/none", `{"user":"client/none"}`},
	}
	for _, s := range steps {
		mustCode(t, "PUT "+s.target, doAs(h, rootID, "PUT", s.target, s.body), 201)
	}
	mustCode(t, "enable", doAs(h, rootID, "PUT", "/v2/auth/enable", ""), 200)
}

func TestAuthEnable(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	steps := []struct {
		name, id, method, body string
		code                   int
		want                   string
		clusterID              bool
	}{
		{"initially off, anyone may ask", "", "GET", "", 200, `{"enabled":false}` + "\n", true},
		{"no root user", "client/x", "PUT", "", 409,
			`{"message":"auth: No root user available, please create one: a user (certificate identity) with the root role, e.g. PUT /v2/auth/users/client/root {\"user\":\"client/root\",\"roles\":[\"root\"]}"}`, true},
		{"disable while off", "client/x", "DELETE", "", 409, `{"message":"auth: already disabled"}`, true},
		{"HEAD is not allowed (etcd)", "", "HEAD", "", 405, "Method Not Allowed\n", false},
		{"POST is not allowed", "", "POST", "", 405, "Method Not Allowed\n", false},
	}
	run := func(steps []struct {
		name, id, method, body string
		code                   int
		want                   string
		clusterID              bool
	}) {
		t.Helper()
		for _, s := range steps {
			w := doAs(h, s.id, s.method, "/v2/auth/enable", s.body)
			checkResponse(t, w, s.code, s.want)
			if got := w.Header().Get("X-Etcd-Cluster-ID") != ""; got != s.clusterID {
				t.Errorf("%s: X-Etcd-Cluster-ID %v, want %v", s.name, got, s.clusterID)
			}
		}
	}
	run(steps)
	if w := doAs(h, "", "HEAD", "/v2/auth/enable", ""); w.Header().Get("Allow") != "GET,PUT,DELETE" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}

	// A user holding root (any identity, not only client/root) allows it.
	mustCode(t, "root user", doAs(h, "", "PUT", "/v2/auth/users/client/admin", `{"user":"client/admin","roles":["root"]}`), 201)
	run([]struct {
		name, id, method, body string
		code                   int
		want                   string
		clusterID              bool
	}{
		{"enable (anyone may while off)", "client/x", "PUT", "", 200, "", true},
		{"enabled", "client/x", "GET", "", 200, `{"enabled":true}` + "\n", true},
		{"enable again", "client/admin", "PUT", "", 409, `{"message":"auth: already enabled"}`, true},
		{"disable as a guest", "client/x", "DELETE", "", 401, noAuth, false},
		{"disable without a certificate", "", "DELETE", "", 401, noAuth, false},
		{"disable as root", "client/admin", "DELETE", "", 200, "", true},
		{"disabled", "", "GET", "", 200, `{"enabled":false}` + "\n", true},
	})
	// Enabling created etcd's default guest role: full access.
	w := doAs(h, "", "GET", "/v2/auth/roles/guest", "")
	checkResponse(t, w, 200, `{"role":"guest","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}`+"\n")
	// The policy is one hidden key, written through raft.
	if ev, err := fc.st.Get(authPolicyKey, false, false, testNow); err != nil || !strings.Contains(*ev.Node.Value, `"enabled":false`) {
		t.Errorf("stored policy: %v %v", ev, err)
	}
}

func TestAuthUsers(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, func(c *Config) { c.MaxRequestBytes = 256 })
	mustCode(t, "role", doAs(h, "", "PUT", "/v2/auth/roles/svc-web", `{"role":"svc-web","permissions":{"kv":{"write":["/w/*"]}}}`), 201)
	mustCode(t, "role", doAs(h, "", "PUT", "/v2/auth/roles/ro", `{"role":"ro","permissions":{"kv":{"read":["/r/*"]}}}`), 201)
	const webJSON = `{"role":"svc-web","permissions":{"kv":{"read":[],"write":["/w/*"]}}}`
	const roJSON = `{"role":"ro","permissions":{"kv":{"read":["/r/*"],"write":[]}}}`
	const rootJSON = `{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}`
	tests := []struct {
		name, method, target, body string
		code                       int
		want                       string
	}{
		{"empty list", "GET", "/v2/auth/users", "", 200, `{"users":[]}` + "\n"},
		{"password refused", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","password":"x"}`, 400,
			`{"message":"Passwords are not supported: a Cairn user is a certificate identity (client/\u003cname\u003e, node/\u003cname\u003e, or the CN of a certificate without a SPIFFE URI SAN), authenticated by its TLS client certificate. Leave out \"password\"."}`},
		{"empty password refused too", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","password":""}`, 400, ""},
		{"name mismatch", "PUT", "/v2/auth/users/client/web", `{"user":"client/db"}`, 400, `{"message":"User JSON name does not match the name in the URL"}`},
		{"bad JSON", "PUT", "/v2/auth/users/client/web", `{"user":`, 400, `{"message":"Invalid JSON in request body."}`},
		{"body too large", "PUT", "/v2/auth/users/client/web", `{"user":"` + strings.Repeat("x", 300) + `"}`, 413, `{"message":"request body over the limit of 256 bytes"}`},
		{"roles and grant", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","roles":["ro"],"grant":["svc-web"]}`, 400,
			`{"message":"User JSON contains both roles and grant/revoke"}`},
		{"unknown role", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","roles":["nope"]}`, 404, `{"message":"auth: Role nope does not exist."}`},
		{"invalid role name", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","roles":["a b"]}`, 400, ""},
		{"create with roles", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","roles":["svc-web"]}`, 201,
			`{"user":"client/web","roles":["svc-web"]}` + "\n"},
		{"create again", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","roles":["ro"]}`, 409, `{"message":"auth: User client/web already exists."}`},
		{"nothing to update", "PUT", "/v2/auth/users/client/web", `{"user":"client/web"}`, 400,
			`{"message":"auth: User not updated. Use grant/revoke to update the user."}`},
		{"create without roles", "PUT", "/v2/auth/users/client/db", `{"user":"client/db"}`, 201, `{"user":"client/db","roles":[]}` + "\n"},
		{"create a CN user", "PUT", "/v2/auth/users/legacy", `{"user":"legacy","roles":["root"]}`, 201, `{"user":"legacy","roles":["root"]}` + "\n"},
		{"percent-encoded slash", "GET", "/v2/auth/users/client%2Fdb", "", 200, `{"user":"client/db"}` + "\n"},
		{"grant", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","grant":["ro"]}`, 200, `{"user":"client/web","roles":["ro","svc-web"]}` + "\n"},
		{"grant duplicate", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","grant":["ro"]}`, 409,
			`{"message":"auth: Granting duplicate role ro for user client/web"}`},
		{"grant unknown", "PUT", "/v2/auth/users/client/db", `{"user":"client/db","grant":["nope"]}`, 404, `{"message":"auth: Role nope does not exist."}`},
		{"revoke ungranted", "PUT", "/v2/auth/users/client/db", `{"user":"client/db","revoke":["ro"]}`, 409,
			`{"message":"auth: Revoking ungranted role ro for user client/db"}`},
		{"grant and revoke cancel out", "PUT", "/v2/auth/users/client/db", `{"user":"client/db","grant":["ro"],"revoke":["ro"]}`, 400,
			`{"message":"auth: User not updated. Use grant/revoke to update the user."}`},
		{"revoke", "PUT", "/v2/auth/users/client/web", `{"user":"client/web","revoke":["svc-web"]}`, 200, `{"user":"client/web","roles":["ro"]}` + "\n"},
		{"update missing user", "PUT", "/v2/auth/users/client/nobody", `{"user":"client/nobody","grant":["ro"]}`, 404,
			`{"message":"auth: User client/nobody does not exist."}`},
		{"get", "GET", "/v2/auth/users/client/web", "", 200, `{"user":"client/web","roles":[` + roJSON + `]}` + "\n"},
		{"get with trailing slash", "GET", "/v2/auth/users/client/web/", "", 200, `{"user":"client/web","roles":[` + roJSON + `]}` + "\n"},
		{"get missing", "GET", "/v2/auth/users/client/nobody", "", 404, `{"message":"auth: User client/nobody does not exist."}`},
		{"list", "GET", "/v2/auth/users/", "", 200, `{"users":[{"user":"client/db"},{"user":"client/web","roles":[` + roJSON + `]},` +
			`{"user":"legacy","roles":[` + rootJSON + `]}]}` + "\n"},
		{"invalid path: nested", "GET", "/v2/auth/users/client/a/b", "", 400, ""},
		{"invalid path: kind", "GET", "/v2/auth/users/svc/a", "", 400, ""},
		{"list is GET only", "PUT", "/v2/auth/users", "", 405, "Method Not Allowed\n"},
		{"user is GET, PUT, DELETE", "POST", "/v2/auth/users/client/web", "", 405, "Method Not Allowed\n"},
		{"delete", "DELETE", "/v2/auth/users/client/db", "", 200, ""},
		{"delete missing", "DELETE", "/v2/auth/users/client/db", "", 404, `{"message":"auth: User client/db does not exist"}`},
		{"role list shows roles in full", "GET", "/v2/auth/roles", "", 200, `{"roles":[` + roJSON + `,` + rootJSON + `,` + webJSON + `]}` + "\n"},
	}
	for _, tt := range tests {
		w := doAs(h, "", tt.method, tt.target, tt.body)
		if tt.want == "" && tt.code != 200 {
			mustCode(t, tt.name, w, tt.code)
			continue
		}
		if w.Code != tt.code || w.Body.String() != tt.want {
			t.Errorf("%s: got %d %q\nwant %d %q", tt.name, w.Code, w.Body, tt.code, tt.want)
		}
		if w.Code < 300 && (w.Header().Get("Content-Type") != "application/json" || w.Header().Get("X-Etcd-Cluster-ID") != testClusterID) {
			t.Errorf("%s: headers %v", tt.name, w.Header())
		}
	}
}

func TestAuthRoles(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	tests := []struct {
		name, method, target, body string
		code                       int
		want                       string
	}{
		{"root only", "GET", "/v2/auth/roles", "", 200, `{"roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}` + "\n"},
		{"get root", "GET", "/v2/auth/roles/root", "", 200, `{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}` + "\n"},
		{"create root", "PUT", "/v2/auth/roles/root", `{"role":"root"}`, 403, `{"message":"auth: Cannot modify role root: is root role."}`},
		{"update root", "PUT", "/v2/auth/roles/root", `{"role":"root","grant":{"kv":{"read":["/x"]}}}`, 403, `{"message":"auth: Cannot modify role root: is root role."}`},
		{"delete root", "DELETE", "/v2/auth/roles/root", "", 403, `{"message":"auth: Cannot modify role root: is root role."}`},
		{"name mismatch", "PUT", "/v2/auth/roles/a", `{"role":"b"}`, 400, `{"message":"Role JSON name does not match the name in the URL"}`},
		{"bad JSON", "PUT", "/v2/auth/roles/a", `[`, 400, `{"message":"Invalid JSON in request body."}`},
		{"bad pattern", "PUT", "/v2/auth/roles/a", `{"role":"a","permissions":{"kv":{"read":["x"]}}}`, 400, ""},
		{"inner star", "PUT", "/v2/auth/roles/a", `{"role":"a","permissions":{"kv":{"write":["/a/*/b"]}}}`, 400, ""},
		{"create empty", "PUT", "/v2/auth/roles/fleet", `{"role":"fleet"}`, 201, `{"role":"fleet","permissions":{"kv":{"read":[],"write":[]}}}` + "\n"},
		{"create sorts and dedups", "PUT", "/v2/auth/roles/rkt", `{"role":"rkt","permissions":{"kv":{"read":["/rkt/*","/a","/rkt/*"],"write":["/rkt/*"]}}}`, 201,
			`{"role":"rkt","permissions":{"kv":{"read":["/a","/rkt/*"],"write":["/rkt/*"]}}}` + "\n"},
		{"create again", "PUT", "/v2/auth/roles/rkt", `{"role":"rkt"}`, 409, `{"message":"auth: Role rkt already exists."}`},
		{"permissions and grant", "PUT", "/v2/auth/roles/rkt", `{"role":"rkt","permissions":{"kv":{"read":["/x"]}},"grant":{"kv":{"read":["/y"]}}}`, 400,
			`{"message":"Role JSON contains both permissions and grant/revoke"}`},
		{"grant", "PUT", "/v2/auth/roles/fleet", `{"role":"fleet","grant":{"kv":{"read":["/rkt/fleet","/fleet/*"]}}}`, 200,
			`{"role":"fleet","permissions":{"kv":{"read":["/fleet/*","/rkt/fleet"],"write":[]}}}` + "\n"},
		{"grant duplicate read", "PUT", "/v2/auth/roles/fleet", `{"role":"fleet","grant":{"kv":{"read":["/fleet/*"]}}}`, 409,
			`{"message":"auth: Granting duplicate read permission /fleet/*"}`},
		{"grant duplicate write", "PUT", "/v2/auth/roles/rkt", `{"role":"rkt","grant":{"kv":{"write":["/rkt/*"]}}}`, 409,
			`{"message":"auth: Granting duplicate write permission /rkt/*"}`},
		{"revoke (ungranted ignored)", "PUT", "/v2/auth/roles/fleet", `{"role":"fleet","revoke":{"kv":{"read":["/rkt/fleet","/nope"],"write":["/nope"]}}}`, 200,
			`{"role":"fleet","permissions":{"kv":{"read":["/fleet/*"],"write":[]}}}` + "\n"},
		{"revoke nothing granted", "PUT", "/v2/auth/roles/fleet", `{"role":"fleet","revoke":{"kv":{"read":["/nope"]}}}`, 400,
			`{"message":"auth: Role not updated. Use grant/revoke to update the role."}`},
		{"update missing", "PUT", "/v2/auth/roles/nope", `{"role":"nope","grant":{"kv":{"read":["/x"]}}}`, 404, `{"message":"auth: Role nope does not exist."}`},
		{"get", "GET", "/v2/auth/roles/fleet", "", 200, `{"role":"fleet","permissions":{"kv":{"read":["/fleet/*"],"write":[]}}}` + "\n"},
		{"get with trailing slash", "GET", "/v2/auth/roles/fleet/", "", 200, `{"role":"fleet","permissions":{"kv":{"read":["/fleet/*"],"write":[]}}}` + "\n"},
		{"get missing", "GET", "/v2/auth/roles/nope", "", 404, `{"message":"auth: Role nope does not exist."}`},
		{"invalid path (etcd)", "GET", "/v2/auth/roles/a/b", "", 400, `{"message":"Invalid path"}`},
		{"invalid name", "GET", "/v2/auth/roles/a%20b", "", 400, ""},
		{"list", "GET", "/v2/auth/roles/", "", 200, `{"roles":[` +
			`{"role":"fleet","permissions":{"kv":{"read":["/fleet/*"],"write":[]}}},` +
			`{"role":"rkt","permissions":{"kv":{"read":["/a","/rkt/*"],"write":["/rkt/*"]}}},` +
			`{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}` + "\n"},
		{"role is GET, PUT, DELETE", "PATCH", "/v2/auth/roles/fleet", "", 405, "Method Not Allowed\n"},
		{"delete", "DELETE", "/v2/auth/roles/fleet", "", 200, ""},
		{"delete missing", "DELETE", "/v2/auth/roles/fleet", "", 404, `{"message":"auth: Role fleet doesn't exist."}`},
		{"unknown auth path", "GET", "/v2/auth/nope", "", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		w := doAs(h, "", tt.method, tt.target, tt.body)
		if tt.want == "" && tt.code != 200 {
			mustCode(t, tt.name, w, tt.code)
			continue
		}
		if w.Code != tt.code || w.Body.String() != tt.want {
			t.Errorf("%s: got %d %q\nwant %d %q", tt.name, w.Code, w.Body, tt.code, tt.want)
		}
	}
}

// TestAuthDanglingRole: as in etcd, deleting a role leaves its name with
// the users, where it grants nothing until the role exists again.
func TestAuthDanglingRole(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	setupPolicy(t, h)
	mustCode(t, "write", doAs(h, "client/writer", "PUT", "/v2/keys/logs/1", "value=x"), 201)
	mustCode(t, "delete role", doAs(h, rootID, "DELETE", "/v2/auth/roles/wo", ""), 200)
	checkResponse(t, doAs(h, "client/writer", "PUT", "/v2/keys/logs/1", "value=y"), 401, keyNoAuth)
	checkResponse(t, doAs(h, rootID, "GET", "/v2/auth/users/client/writer", ""), 200, `{"user":"client/writer"}`+"\n")
	mustCode(t, "role again", doAs(h, rootID, "PUT", "/v2/auth/roles/wo", `{"role":"wo","permissions":{"kv":{"write":["/logs/*"]}}}`), 201)
	mustCode(t, "write again", doAs(h, "client/writer", "PUT", "/v2/keys/logs/1", "value=z"), 200)
}

// TestAuthLastRoot: while authorization is on, the last user holding root
// can be neither deleted nor demoted (etcd: "Cannot delete root user").
func TestAuthLastRoot(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	setupPolicy(t, h)
	checkResponse(t, doAs(h, rootID, "DELETE", "/v2/auth/users/client/root", ""), 403,
		`{"message":"auth: Cannot delete client/root, the last user with the root role, while auth is enabled."}`)
	checkResponse(t, doAs(h, rootID, "PUT", "/v2/auth/users/client/root", `{"user":"client/root","revoke":["root"]}`), 403,
		`{"message":"auth: Cannot revoke the root role from client/root, the last user holding it, while auth is enabled."}`)
	// With a second root user, either may go.
	mustCode(t, "second root", doAs(h, rootID, "PUT", "/v2/auth/users/client/admin", `{"user":"client/admin","roles":["root"]}`), 201)
	mustCode(t, "demote", doAs(h, rootID, "PUT", "/v2/auth/users/client/root", `{"user":"client/root","revoke":["root"]}`), 200)
	checkResponse(t, doAs(h, rootID, "GET", "/v2/auth/users", ""), 401, noAuth)
	mustCode(t, "new root", doAs(h, "client/admin", "GET", "/v2/auth/users", ""), 200)
	// Node identities are root whatever the policy says.
	mustCode(t, "node", doAs(h, "node/n1", "DELETE", "/v2/auth/enable", ""), 200)
	mustCode(t, "delete while off", doAs(h, "", "DELETE", "/v2/auth/users/client/admin", ""), 200)
}

// TestAuthNeedsRoot: with authorization on, the auth API and membership
// changes need root; GET /v2/auth/enable and listing members do not.
func TestAuthNeedsRoot(t *testing.T) {
	ac := &adminCluster{fakeCluster: newFakeCluster(store.Config{})}
	h, err := New(Config{Cluster: ac, Now: newFakeNow()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	setupPolicy(t, h)
	refused := []struct{ method, target, body string }{
		{"GET", "/v2/auth/users", ""},
		{"GET", "/v2/auth/users/client/web", ""},
		{"PUT", "/v2/auth/users/client/web", `{"user":"client/web","grant":["root"]}`},
		{"DELETE", "/v2/auth/users/client/web", ""},
		{"GET", "/v2/auth/roles", ""},
		{"GET", "/v2/auth/roles/svc-web", ""},
		{"PUT", "/v2/auth/roles/svc-web", `{"role":"svc-web","grant":{"kv":{"write":["/*"]}}}`},
		{"DELETE", "/v2/auth/roles/guest", ""},
		{"PUT", "/v2/auth/enable", ""},
		{"DELETE", "/v2/auth/enable", ""},
		{"POST", "/v2/members", `{"peerURLs":["https://h:1"]}`},
		{"PUT", "/v2/members/2", `{"peerURLs":["https://h:2"]}`},
		{"DELETE", "/v2/members/2", ""},
	}
	// Every kind of non-root client: a user with roles, one without, a
	// guest, no certificate, and a certificate of another trust domain.
	for _, id := range []string{"client/web", "client/none", "client/stranger", "", "spiffe://evil.example/client/root"} {
		for _, rq := range refused {
			w := doAs(h, id, rq.method, rq.target, rq.body)
			if w.Code != 401 || w.Body.String() != noAuth || w.Header().Get("X-Etcd-Cluster-ID") != "" {
				t.Errorf("%q %s %s: %d %q %v, want 401 %s without a cluster ID", id, rq.method, rq.target, w.Code, w.Body, w.Header(), noAuth)
			}
		}
		mustCode(t, id+" GET /v2/auth/enable", doAs(h, id, "GET", "/v2/auth/enable", ""), 200)
		mustCode(t, id+" GET /v2/members", doAs(h, id, "GET", "/v2/members", ""), 200)
		mustCode(t, id+" GET /v2/machines", doAs(h, id, "GET", "/v2/machines", ""), 200)
	}
	if len(ac.calls) != 0 {
		t.Errorf("membership changed by non-root clients: %v", ac.calls)
	}
	for _, id := range []string{rootID, "node/n2"} {
		mustCode(t, id+" remove member", doAs(h, id, "DELETE", "/v2/members/2", ""), 204)
		mustCode(t, id+" list users", doAs(h, id, "GET", "/v2/auth/users", ""), 200)
	}
}

func newFakeNow() func() time.Time { return func() time.Time { return testNow } }
