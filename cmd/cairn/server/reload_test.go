package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
			c, _, err := load(t, "", nil, tc.args...)
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

// TestReloaderSetup: newReloader adds the CRLs to the materials or, for a
// configuration it cannot honor, fails with the reason.
func TestReloaderSetup(t *testing.T) {
	p := tlstest.NewPKI(t)
	dir, ca, caFile, files := p.Dir, p.CA, p.CAFile, p.Node
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
			cfg := Config{CRLFile: tc.crl, PeerCRLFile: tc.peerCRL, TLSTrustDomain: "cairn.internal"}
			r, err := newReloader(cfg, slog.New(slog.DiscardHandler), m, peer)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("err = %v, want %q", err, tc.errSub)
				}
				return
			}
			if err != nil || r == nil {
				t.Fatalf("newReloader: %v", err)
			}
			if m.Files().CRLFile != tc.crl || peer.Files().CRLFile != tc.peerCRL {
				t.Errorf("CRL files %q and %q, want %q and %q", m.Files().CRLFile, peer.Files().CRLFile, tc.crl, tc.peerCRL)
			}
		})
	}
}
