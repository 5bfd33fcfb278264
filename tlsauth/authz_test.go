package tlsauth

import (
	"errors"
	"testing"
)

func TestMatchKey(t *testing.T) {
	tests := []struct {
		pattern, key string
		key1, tree   bool // MatchKey, MatchTree
	}{
		// Exact patterns match one key, never recursively.
		{"/foo", "/foo", true, false},
		{"/foo", "/foo/bar", false, false},
		{"/foo", "/foobar", false, false},
		{"/foo/", "/foo", false, false},
		// "/foo/*": everything below /foo, and the directory itself.
		{"/foo/*", "/foo/bar", true, true},
		{"/foo/*", "/foo/bar/baz", true, true},
		{"/foo/*", "/foo", true, true},
		{"/foo/*", "/foobar", false, false},
		{"/foo/*", "/", false, false},
		// "/foo*": a plain string prefix, as in etcd.
		{"/foo*", "/foo", true, true},
		{"/foo*", "/foobar", true, true},
		{"/foo*", "/foo/x", true, true},
		{"/foo*", "/fo", false, false},
		// Everything.
		{"/*", "/", true, true},
		{"/*", "/a/b", true, true},
		{"*", "/", true, true},
		{"*", "/a", true, true},
		// Degenerate.
		{"", "/", false, false},
		{"", "", false, false},
		// The skydns service prefix of docs/authorization.md.
		{"/skydns/internal/cairn/web/*", "/skydns/internal/cairn/web/i-1", true, true},
		{"/skydns/internal/cairn/web/*", "/skydns/internal/cairn/web", true, true},
		{"/skydns/internal/cairn/web/*", "/skydns/internal/cairn/webapp/i-1", false, false},
		{"/skydns/internal/cairn/web/*", "/skydns/internal/cairn/db/i-1", false, false},
		{"/skydns/internal/cairn/web/*", "/skydns/internal/cairn", false, false},
	}
	for _, tt := range tests {
		if got := MatchKey(tt.pattern, tt.key); got != tt.key1 {
			t.Errorf("MatchKey(%q, %q) = %v, want %v", tt.pattern, tt.key, got, tt.key1)
		}
		if got := MatchTree(tt.pattern, tt.key); got != tt.tree {
			t.Errorf("MatchTree(%q, %q) = %v, want %v", tt.pattern, tt.key, got, tt.tree)
		}
	}
}

func TestOverlapsTree(t *testing.T) {
	tests := []struct {
		pattern, key string
		want         bool
	}{
		{"/a/b/*", "/", true},
		{"/a/b/*", "/a", true},
		{"/a/b/*", "/a/b", true},
		{"/a/b/*", "/a/b/c", true},
		{"/a/b/*", "/a/bc", false},
		{"/a/b/*", "/x", false},
		{"/a/b", "/a", true},
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/c", false},
		{"/a/b", "/a/bb", false},
		{"/a/b*", "/a/bc", true},
		{"/a/b*", "/a/c", false},
		{"/*", "/anything", true},
		{"*", "/anything", true},
	}
	for _, tt := range tests {
		if got := overlapsTree(tt.pattern, tt.key); got != tt.want {
			t.Errorf("overlapsTree(%q, %q) = %v, want %v", tt.pattern, tt.key, got, tt.want)
		}
	}
}

// testPolicy has one user per kind of rule.
func testPolicy() *Policy {
	return &Policy{
		Enabled: true,
		Users: map[string][]string{
			"client/root":   {"root"},
			"client/web":    {"svc-web"},
			"client/reader": {"ro"},
			"client/writer": {"wo"},
			"client/exact":  {"exact"},
			"client/multi":  {"ro", "wo", "missing"},
			"client/none":   {},
			"client/ghost":  {"missing"},
			"legacy-cn":     {"ro"},
			"client/x":      {"root"}, // a CN "client/x" must not become this user
		},
		Roles: map[string]Permissions{
			"svc-web": {Write: []string{"/skydns/internal/cairn/web/*"}},
			"ro":      {Read: []string{"/config/*"}},
			"wo":      {Write: []string{"/logs/*"}},
			"exact":   {Read: []string{"/one"}, Write: []string{"/one"}},
			"guest":   {Read: []string{"/public/*"}},
		},
	}
}

func TestPolicyPrincipal(t *testing.T) {
	client := func(n string) Identity { return Identity{Name: n, Kind: KindClient} }
	pol := testPolicy()
	type check struct {
		op        string // read, write, watch, see
		key       string
		recursive bool // for see: the event removes a directory
		want      bool
	}
	tests := []struct {
		name   string
		pr     Principal
		root   bool
		guest  bool
		checks []check
	}{
		{"root role", pol.Principal(client("root"), nil), true, false, []check{
			{"read", "/anything", true, true}, {"write", "/", true, true},
		}},
		{"node identity", pol.Principal(Identity{Name: "n1", Kind: KindNode}, nil), true, false, nil},
		{"allowed node CN", pol.Principal(Identity{Name: "peer-1", Kind: KindCN}, []string{"peer-1"}), true, false, nil},
		{"service prefix, write only", pol.Principal(client("web"), nil), false, false, []check{
			{"write", "/skydns/internal/cairn/web/i-1", false, true},
			{"write", "/skydns/internal/cairn/web", true, true},
			{"write", "/skydns/internal/cairn/web/i-1", true, true},
			{"write", "/skydns/internal/cairn/db/i-1", false, false},
			{"write", "/skydns/internal/cairn/webapp/i-1", false, false},
			{"write", "/skydns/internal/cairn", false, false},
			{"read", "/skydns/internal/cairn/web/i-1", false, false},
			{"watch", "/", true, false},
		}},
		{"read-only prefix", pol.Principal(client("reader"), nil), false, false, []check{
			{"read", "/config/a", false, true},
			{"read", "/config", true, true},
			{"read", "/config/a/b", true, true},
			{"write", "/config/a", false, false},
			{"read", "/", false, false},
			{"read", "/", true, false},
			{"watch", "/", true, true}, // filtered by see
			{"watch", "/", false, false},
			{"watch", "/other", true, false},
			{"see", "/config/a", false, true},
			{"see", "/other", false, false},
			{"see", "/", true, true}, // the removal of a directory above /config
			{"see", "/other", true, false},
		}},
		{"write-only prefix", pol.Principal(client("writer"), nil), false, false, []check{
			{"write", "/logs/1", false, true},
			{"read", "/logs/1", false, false},
			{"watch", "/logs", true, false},
		}},
		{"exact key", pol.Principal(client("exact"), nil), false, false, []check{
			{"read", "/one", false, true},
			{"write", "/one", false, true},
			{"read", "/one", true, false}, // recursive needs a prefix
			{"write", "/one", true, false},
			{"read", "/one/two", false, false},
			{"watch", "/one", false, true},
			{"watch", "/", true, true},
			{"see", "/one", false, true},
			{"see", "/one/two", false, false},
		}},
		{"union of roles, missing role ignored", pol.Principal(client("multi"), nil), false, false, []check{
			{"read", "/config/x", false, true}, {"write", "/logs/x", false, true},
			{"write", "/config/x", false, false},
		}},
		{"user with no roles", pol.Principal(client("none"), nil), false, false, []check{
			{"read", "/public/x", false, false},
		}},
		{"user with a dangling role", pol.Principal(client("ghost"), nil), false, false, []check{
			{"read", "/public/x", false, false},
		}},
		{"no user entry: guest", pol.Principal(client("stranger"), nil), false, true, []check{
			{"read", "/public/x", false, true}, {"write", "/public/x", false, false},
		}},
		{"anonymous: guest", pol.Anonymous(), false, true, []check{
			{"read", "/public/x", false, true},
		}},
		{"CN user", pol.Principal(Identity{Name: "legacy-cn", Kind: KindCN}, nil), false, false, []check{
			{"read", "/config/x", false, true},
		}},
		{"CN posing as a client identity is a guest", pol.Principal(Identity{Name: "client/x", Kind: KindCN}, nil), false, true, []check{
			{"write", "/x", false, false},
		}},
		{"node CN not allowed is not root", pol.Principal(Identity{Name: "peer-2", Kind: KindCN}, []string{"peer-1"}), false, true, nil},
		{"zero principal", Principal{}, false, false, []check{
			{"read", "/public/x", false, false}, {"see", "/public/x", false, false},
		}},
		{"disabled: everyone is root", (&Policy{}).Principal(client("stranger"), nil), true, false, nil},
		{"disabled: anonymous is root", (&Policy{}).Anonymous(), true, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pr.Root() != tt.root || tt.pr.Guest != tt.guest {
				t.Errorf("root=%v guest=%v, want %v %v", tt.pr.Root(), tt.pr.Guest, tt.root, tt.guest)
			}
			for _, c := range tt.checks {
				var got bool
				switch c.op {
				case "read":
					got = tt.pr.CanRead(c.key, c.recursive)
				case "write":
					got = tt.pr.CanWrite(c.key, c.recursive)
				case "watch":
					got = tt.pr.CanWatch(c.key, c.recursive)
				case "see":
					got = tt.pr.CanSee(c.key, c.recursive)
				}
				if got != c.want {
					t.Errorf("%s %q (recursive/dir %v) = %v, want %v", c.op, c.key, c.recursive, got, c.want)
				}
			}
		})
	}
}

func TestGuestDeleted(t *testing.T) {
	pol := testPolicy()
	delete(pol.Roles, GuestRole)
	if pr := pol.Anonymous(); pr.CanRead("/public/x", false) || pr.CanRead("/", false) {
		t.Error("without a guest role, a guest may read")
	}
}

func TestHasRootUser(t *testing.T) {
	pol := testPolicy()
	if !pol.HasRootUser() {
		t.Error("HasRootUser = false")
	}
	delete(pol.Users, "client/root")
	delete(pol.Users, "client/x")
	if pol.HasRootUser() {
		t.Error("HasRootUser = true without root users")
	}
}

func TestValidateNames(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) error
		in   string
		want error
	}{
		{"client", ValidateUser, "client/web", nil},
		{"node", ValidateUser, "node/n1", nil},
		{"CN", ValidateUser, "Legacy Service 1", nil},
		{"CN root", ValidateUser, "root", nil},
		{"empty user", ValidateUser, "", ErrInvalidUser},
		{"unknown kind", ValidateUser, "svc/web", ErrInvalidUser},
		{"nested", ValidateUser, "client/web/x", ErrInvalidUser},
		{"empty name", ValidateUser, "client/", ErrInvalidUser},
		{"dot name", ValidateUser, "client/..", ErrInvalidUser},
		{"control", ValidateUser, "a\x00b", ErrInvalidUser},
		{"bad utf-8", ValidateUser, "a\xffb", ErrInvalidUser},
		{"long user", ValidateUser, string(make([]byte, MaxUserBytes+1)), ErrInvalidUser},

		{"role", ValidateRole, "svc-web", nil},
		{"role with dots and colon", ValidateRole, "team:svc.web_1", nil},
		{"role root", ValidateRole, "root", nil},
		{"empty role", ValidateRole, "", ErrInvalidRole},
		{"role slash", ValidateRole, "a/b", ErrInvalidRole},
		{"role space", ValidateRole, "a b", ErrInvalidRole},
		{"role dotdot", ValidateRole, "..", ErrInvalidRole},

		{"exact", ValidatePattern, "/a/b", nil},
		{"prefix", ValidatePattern, "/a/*", nil},
		{"string prefix", ValidatePattern, "/a*", nil},
		{"all", ValidatePattern, "*", nil},
		{"all slash", ValidatePattern, "/*", nil},
		{"empty pattern", ValidatePattern, "", ErrInvalidPattern},
		{"relative", ValidatePattern, "a/b", ErrInvalidPattern},
		{"inner star", ValidatePattern, "/a/*/b", ErrInvalidPattern},
		{"newline", ValidatePattern, "/a\n", ErrInvalidPattern},
	}
	for _, tt := range tests {
		if err := tt.fn(tt.in); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %q: err = %v, want %v", tt.name, tt.in, err, tt.want)
		}
	}
}
