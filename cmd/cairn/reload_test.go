package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// TestOpenSSLRevocationRecipe runs the openssl recipe of docs/security.md
// ("Your own PKI with openssl", then "Revoking") and checks that the CRL it
// makes loads and refuses the revoked certificate at the handshake.
func TestOpenSSLRevocationRecipe(t *testing.T) {
	needOpenSSL(t)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## Revoking\n")
	if !ok {
		t.Fatal(`docs/security.md has no section "## Revoking"`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	blocks := regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindAllStringSubmatch(sec, -1)
	if len(blocks) != 1 {
		t.Fatalf("found %d sh blocks in the Revoking section, want 1", len(blocks))
	}
	dir := t.TempDir()
	for i, block := range append(recipe(t), blocks[0][1]) {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", block)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("block %d failed: %v\n%s\n--- output:\n%s", i+1, err, block, out)
		}
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	node, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: path("ca.crt"), CertFile: path("n1.crt"), KeyFile: path("n1.key"), CRLFile: path("ca.crl")})
	if err != nil {
		t.Fatalf("load the node's material with the CRL: %v", err)
	}
	for _, tc := range []struct {
		client  string
		revoked bool
	}{{"alice", true}, {"bob", false}} {
		m, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: path("ca.crt"), CertFile: path(tc.client + ".crt"), KeyFile: path(tc.client + ".key")})
		if err != nil {
			t.Fatal(err)
		}
		cli := m.ClientConfig(tlsconf.Options{})
		cli.ServerName = "10.0.0.1"
		r := tlstest.Handshake(t, node.ServerConfig(tlsconf.Options{}), cli)
		if got := errors.Is(r.ServerErr, tlsconf.ErrRevoked); got != tc.revoked {
			t.Errorf("%s: server error %v, want revoked %v", tc.client, r.ServerErr, tc.revoked)
		}
	}
}
