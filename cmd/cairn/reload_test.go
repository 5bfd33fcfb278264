package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestConfigRevocationAndTimeoutKeys(t *testing.T) {
	for _, tc := range []struct {
		desc                 string
		args                 []string
		crl, peerCRL, errSub string
		timeout              time.Duration
	}{
		{"defaults", nil, "", "", "", 10 * time.Second},
		{"peer CRL defaults to crl_file", []string{"--crl-file", "/c.crl"}, "/c.crl", "/c.crl", "", 10 * time.Second},
		{"peer CRL of its own", []string{"--crl-file", "/c.crl", "--peer-crl-file", "/p.crl"}, "/c.crl", "/p.crl", "", 10 * time.Second},
		{"header timeout", []string{"--read-header-timeout", "250ms"}, "", "", "", 250 * time.Millisecond},
		{"zero header timeout", []string{"--read-header-timeout", "0s"}, "", "", "limits.read_header_timeout: 0s is not positive", 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, _, err := loadConfig(newFlags(t, tc.args...), "", nil)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("err = %v, want %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.CRLFile != tc.crl || c.PeerCRLFile != tc.peerCRL || c.ReadHeaderTimeout != tc.timeout {
				t.Errorf("crl %q, peer crl %q, timeout %v; want %q, %q, %v", c.CRLFile, c.PeerCRLFile, c.ReadHeaderTimeout, tc.crl, tc.peerCRL, tc.timeout)
			}
		})
	}
}

// TestReloadTLSSetup: reloadTLS adds the CRLs to the materials or, for a
// configuration it cannot honor, makes the peer network fail to start
// with the reason.
func TestReloadTLSSetup(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("cairn.internal", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := ca.WriteFiles(caFile, filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueNode("cairn.internal", "n1", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files := tlsconf.Files{CAFile: caFile, CertFile: filepath.Join(dir, "n1.crt"), KeyFile: filepath.Join(dir, "n1.key")}
	if err := pki.WritePair(iss, files.CertFile, files.KeyFile); err != nil {
		t.Fatal(err)
	}
	crl, err := ca.RevocationList(1, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "ca.crl")
	if err := os.WriteFile(crlFile, crl, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		desc         string
		crl, peerCRL string
		ownPeer      bool // the peer port has a material of its own
		errSub       string
	}{
		{"no CRL", "", "", false, ""},
		{"one CRL for a shared material", crlFile, crlFile, false, ""},
		{"a peer CRL of its own for a material of its own", "", crlFile, true, ""},
		{"two CRLs for one material", crlFile, filepath.Join(dir, "other.crl"), false, "peer.crl_file"},
		{"missing CRL", filepath.Join(dir, "missing.crl"), filepath.Join(dir, "missing.crl"), false, "crl_file: tlsauth: load CRL file"},
		{"bad peer CRL", "", caFile, true, "peer.crl_file (default: crl_file): tlsauth: load CRL file"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			m, err := tlsconf.LoadMaterial(files)
			if err != nil {
				t.Fatal(err)
			}
			peer := m
			if tc.ownPeer {
				if peer, err = tlsconf.LoadMaterial(files); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := Config{CRLFile: tc.crl, PeerCRLFile: tc.peerCRL, TLSTrustDomain: "cairn.internal"}
			dial := reloadTLS(ctx, cfg, newLogger(os.Stderr, "text", "error", "n1"), tlsconf.Options{}, m, peer)
			c, err := dial()
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("err = %v, want %q", err, tc.errSub)
				}
				return
			}
			if err != nil || c == nil {
				t.Fatalf("dial config: %v", err)
			}
			if m.Files().CRLFile != tc.crl || peer.Files().CRLFile != tc.peerCRL {
				t.Errorf("CRL files %q and %q, want %q and %q", m.Files().CRLFile, peer.Files().CRLFile, tc.crl, tc.peerCRL)
			}
		})
	}
}

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
