package v2http

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/cairnkv/cairn/store"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"empty", `{"version":1}`, true},
		{"full", `{"version":1,"enabled":true,"users":{"client/web":["svc-web"],"legacy":["root"]},"roles":{"svc-web":{"read":[],"write":["/w/*"]}}}`, true},
		{"null maps", `{"version":1,"users":null,"roles":null}`, true},
		{"not JSON", `{`, false},
		{"no version", `{"enabled":true}`, false},
		{"future version", `{"version":2}`, false},
		{"bad user", `{"version":1,"users":{"svc/x":[]}}`, false},
		{"bad role of a user", `{"version":1,"users":{"client/x":["a b"]}}`, false},
		{"bad role name", `{"version":1,"roles":{"a/b":{}}}`, false},
		{"stored root role", `{"version":1,"roles":{"root":{"read":["/*"]}}}`, false},
		{"bad pattern", `{"version":1,"roles":{"r":{"read":["x"]}}}`, false},
	}
	for _, tt := range tests {
		d, err := parsePolicy(tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
			continue
		}
		if err == nil && (d.Users == nil || d.Roles == nil) {
			t.Errorf("%s: nil maps", tt.name)
		}
	}
}

// TestPolicyCache: the parsed policy is reused until the policy key
// changes, and each state is at least as fresh as asked for.
func TestPolicyCache(t *testing.T) {
	fc := newFakeCluster(store.Config{})
	c := &policyCache{log: slog.New(slog.DiscardHandler)}
	empty := c.get(fc.st)
	if empty.pol.Enabled || empty.mod != 0 || empty.err != nil {
		t.Fatalf("no policy: %+v", empty)
	}
	fc.put(t, "/a", "1")
	if s := c.get(fc.st); s.pol != empty.pol || s.checked != fc.st.Index() {
		t.Errorf("after an unrelated write: %+v", s)
	}
	ev := fc.put(t, authPolicyKey, `{"version":1,"enabled":true,"users":{"client/r":["root"]}}`)
	s := c.get(fc.st)
	if s.pol == empty.pol || !s.pol.Enabled || s.mod != ev.Node.ModifiedIndex {
		t.Fatalf("after a policy write: %+v", s)
	}
	// getAt with an older index costs nothing and returns the same state.
	if c.getAt(fc.st, 1) != s {
		t.Error("getAt(older index) read again")
	}
	fc.put(t, "/b", "1")
	if s2 := c.getAt(fc.st, fc.st.Index()); s2.pol != s.pol {
		t.Error("re-parsed an unchanged policy")
	}
}

// TestPolicyDocWireFormat: the stored document is tlsauth.Policy's JSON
// after the version, byte for byte what earlier releases wrote.
func TestPolicyDocWireFormat(t *testing.T) {
	for _, doc := range []string{
		`{"version":1,"enabled":false,"users":{},"roles":{}}`,
		`{"version":1,"enabled":true,"users":{"client/web":["svc-web"],"legacy":["root"]},"roles":{"guest":{"read":["/*"],"write":["/*"]},"svc-web":{"read":[],"write":["/w/*"]}}}`,
	} {
		d, err := parsePolicy(doc)
		if err != nil {
			t.Fatalf("parse %s: %v", doc, err)
		}
		got, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != doc {
			t.Errorf("round trip:\n got %s\nwant %s", got, doc)
		}
	}
}
