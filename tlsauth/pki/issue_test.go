package pki_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestNodeHosts(t *testing.T) {
	tests := []struct {
		name     string
		kind     tlsauth.Kind
		ips, dns []string
		want     []string
		err      string
	}{
		{"node", tlsauth.KindNode, []string{"10.0.0.1", "[::1]"}, []string{"n1.example"}, []string{"10.0.0.1", "[::1]", "n1.example"}, ""},
		{"client", tlsauth.KindClient, nil, nil, nil, ""},
		{"client with an address", tlsauth.KindClient, []string{"10.0.0.1"}, nil, nil, "apply to node certificates only"},
		{"node without an address", tlsauth.KindNode, nil, nil, nil, "a node certificate needs the addresses"},
		{"a name as IP", tlsauth.KindNode, []string{"n1.example"}, nil, nil, `--ip "n1.example" is not an IP address`},
		{"an IP as name", tlsauth.KindNode, nil, []string{"10.0.0.1"}, nil, `--dns "10.0.0.1" is an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pki.NodeHosts(tt.kind, tt.ips, tt.dns)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("NodeHosts = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestIssueWarns: what does not stop an issue is told to Warn, in order.
func TestIssueWarns(t *testing.T) {
	dir := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	var warnings []string
	r, err := pki.Issue(pki.IssueRequest{CADir: dir, Kind: tlsauth.KindClient, Name: "x", Validity: 48 * time.Hour,
		TrustDomain: "other.example", P12: true, Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"the CA was made for trust domain cairn.internal", "x.p12 has an empty password", "the CA expires on"}
	if len(warnings) != len(want) {
		t.Fatalf("warnings %q, want %d", warnings, len(want))
	}
	for i, w := range want {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warning %d = %q, want %q", i, warnings[i], w)
		}
	}
	if r.P12File != filepath.Join(dir, "x.p12") || r.TrustDomain != "other.example" || !r.Cert.NotAfter.Equal(readLeaf(t, filepath.Join(dir, "ca.crt")).NotAfter) {
		t.Errorf("result %+v", r)
	}
}

func TestInitCANeverReplaces(t *testing.T) {
	dir := caDir(t, tlstest.TrustDomain, time.Hour)
	before := dirContents(t, dir)
	_, err := pki.InitCA(dir, tlstest.TrustDomain, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "never replaces a CA") {
		t.Fatalf("err = %v", err)
	}
	if !maps.Equal(before, dirContents(t, dir)) {
		t.Error("files changed")
	}
	if _, err := pki.InitCA(filepath.Join(t.TempDir(), "x"), "Bad Domain", time.Hour); !errors.Is(err, tlsauth.ErrInvalidTrustDomain) {
		t.Errorf("bad trust domain: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil {
		t.Error(err)
	}
}
