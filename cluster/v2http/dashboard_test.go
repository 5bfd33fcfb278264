package v2http

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http/dashboard"
	"github.com/cairnkv/cairn/store"
)

func TestDashboardRoutes(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	tests := []struct {
		name, method, target, accept string
		code                         int
		location, ctype, body        string
	}{
		{"the bare path", "GET", "/mod/dashboard", "", 302, "/mod/dashboard/", "", ""},
		{"a browser at /", "GET", "/", "text/html,application/xhtml+xml", 302, "/mod/dashboard/", "", ""},
		{"a client at /", "GET", "/", "application/json", 404, "", "", ""},
		{"a POST to /", "POST", "/", "text/html", 404, "", "", ""},
		{"the page", "GET", "/mod/dashboard/", "", 200, "", "text/html; charset=utf-8", "Cairn dashboard"},
		{"a module", "GET", "/mod/dashboard/static/app.js", "", 200, "", "text/javascript; charset=utf-8", "import"},
		{"the stylesheet", "GET", "/mod/dashboard/static/style.css", "", 200, "", "text/css; charset=utf-8", ""},
		{"no directory listing", "GET", "/mod/dashboard/static/", "", 404, "", "", ""},
		{"no such asset", "GET", "/mod/dashboard/static/nope.js", "", 404, "", "", ""},
		{"no such page", "GET", "/mod/dashboard/nope", "", 404, "", "", ""},
		{"read-only", "PUT", "/mod/dashboard/", "", 405, "", "", ""},
		{"a neighbour path", "GET", "/mod/dashboardx", "", 404, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.accept != "" {
				hdr = []string{"Accept", tt.accept}
			}
			w := do(h, tt.method, tt.target, "", hdr...)
			if w.Code != tt.code {
				t.Fatalf("%s %s: %d, want %d: %s", tt.method, tt.target, w.Code, tt.code, w.Body)
			}
			if got := w.Header().Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), tt.ctype)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body does not contain %q", tt.body)
			}
			if tt.code == 200 && !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("no Content-Security-Policy: %v", w.Header())
			}
		})
	}
}

func TestDashboardWhoami(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	whoami := func(id, query string) dashboard.Identity {
		t.Helper()
		w := doAs(h, id, "GET", "/mod/dashboard/api/whoami"+query, "")
		mustCode(t, "whoami", w, 200)
		var out dashboard.Identity
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("whoami: %v: %s", err, w.Body)
		}
		return out
	}
	access := func(id dashboard.Identity, key string) dashboard.KeyAccess {
		t.Helper()
		for _, k := range id.Keys {
			if k.Key == key {
				return k
			}
		}
		t.Fatalf("no access for %s in %+v", key, id.Keys)
		return dashboard.KeyAccess{}
	}
	off := whoami("client/alice", "?key=/config/a")
	if off.Name != "client/alice" || off.AuthEnabled || !off.Root || !access(off, "/config/a").Write {
		t.Errorf("authorization off: %+v", off)
	}
	if len(off.Keys) != 6 || off.Keys[0].Key != "/" || off.Keys[1].Key != webPrefix[:len("/skydns/internal/cairn")] {
		t.Errorf("keys asked about: %+v", off.Keys)
	}

	if a := access(off, "/skydns/internal/cairn"); a.Exists {
		t.Errorf("the discovery directory exists before any registration: %+v", a)
	}
	mustCode(t, "register", doAs(h, rootID, "PUT", "/v2/keys/skydns/internal/cairn/web/w1", `value={"host":"10.0.0.1"}`), 201)
	if a := access(whoami("client/alice", ""), "/skydns/internal/cairn"); !a.Exists {
		t.Errorf("the discovery directory does not exist after a registration: %+v", a)
	}

	setupPolicy(t, h)
	reader := whoami("client/reader", "?key=/config/a&key=logs/x&key=/_cairn/policy&key=/skydns/internal/cairn/web")
	if !reader.AuthEnabled || reader.Root || reader.Guest || len(reader.Roles) != 1 || reader.Roles[0].Name != "ro" {
		t.Errorf("reader: %+v", reader)
	}
	if a := access(reader, "/config/a"); !a.Read || !a.ReadRecursive || a.Write {
		t.Errorf("reader on /config/a: %+v", a)
	}
	if a := access(reader, "/skydns/internal/cairn/web"); !a.Read || !a.Exists {
		t.Errorf("reader on its readable, existing directory: %+v", a)
	}
	if a := access(reader, "/logs/x"); a.Read || a.Write || a.Exists {
		t.Errorf("reader on /logs/x: %+v", a)
	}
	if a := access(reader, "/_cairn/policy"); a.Read || a.Write {
		t.Errorf("reader on /_cairn: %+v", a)
	}
	root := whoami(rootID, "")
	if !root.Root || !access(root, "/").Write {
		t.Errorf("root: %+v", root)
	}
	if a := access(root, "/_mod/lock"); !a.Write {
		t.Errorf("root on /_mod/lock: %+v", a)
	}
	guest := whoami("", "")
	if !guest.Guest || guest.Name != "" || len(guest.Roles) != 1 || guest.Roles[0].Name != "guest" {
		t.Errorf("no certificate: %+v", guest)
	}
}

func TestDashboardCluster(t *testing.T) {
	// Another member: its /health answers over TLS; the probe records the
	// certificate it presented.
	member := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"health":"true","reason":""}`))
	}))
	t.Cleanup(member.Close)
	memberTLS := member.Client().Transport.(*http.Transport).TLSClientConfig

	h, fc := newTestHandler(t, store.Config{}, func(c *Config) {
		c.Dashboard.MemberTLS = func() *tls.Config { return memberTLS }
	})
	fc.set(func(f *fakeCluster) {
		f.status = cluster.Status{ID: 1, Name: "n1", State: "StateFollower", LeaderID: 2, Term: 7, CommitIndex: 40, AppliedIndex: 39}
		f.members = []cluster.Member{
			{ID: 1, Name: "n1", PeerURLs: []string{"https://127.0.0.1:1"}, ClientURLs: []string{"https://127.0.0.1:1"}},
			{ID: 2, Name: "n2", PeerURLs: []string{"https://127.0.0.1:2"}, ClientURLs: []string{member.URL}},
			{ID: 3, PeerURLs: []string{"https://127.0.0.1:3"}},
		}
	})
	w := do(h, "GET", "/mod/dashboard/api/cluster", "")
	mustCode(t, "api/cluster", w, 200)
	var got struct {
		Name, State, LeaderID, LeaderName string
		Term, CommitIndex                 uint64
		Probed                            bool
		Members                           []struct {
			Name, Health, Error string
			Leader, Self        bool
			CertNotAfter        *string
		}
		Discovery struct{ Dir, Zone string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	if got.Name != "n1" || got.LeaderID != "2" || got.LeaderName != "n2" || got.Term != 7 || got.CommitIndex != 40 || !got.Probed {
		t.Errorf("status: %+v", got)
	}
	if got.Discovery.Dir != "/skydns/internal/cairn" || got.Discovery.Zone != "cairn.internal." {
		t.Errorf("discovery layout: %+v", got.Discovery)
	}
	if len(got.Members) != 3 {
		t.Fatalf("members: %+v", got.Members)
	}
	n1, n2, n3 := got.Members[0], got.Members[1], got.Members[2]
	if !n1.Self || n1.Health != "unknown" || n1.Error == "" {
		t.Errorf("n1 (nothing listens): %+v", n1)
	}
	if !n2.Leader || n2.Health != "true" || n2.CertNotAfter == nil {
		t.Errorf("n2 (healthy): %+v", n2)
	}
	if n3.Health != "unknown" || !strings.Contains(n3.Error, "no client URL") {
		t.Errorf("n3 (not started): %+v", n3)
	}
}
