package tlsconf_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestReloadFailureKeepsMaterial(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, p *tlstest.PKI)
		want    string
	}{
		{"garbage certificate", func(t *testing.T, p *tlstest.PKI) {
			tlstest.WriteFile(t, p.Node.CertFile, "not a certificate", 0o644)
		}, "tlsauth: load certificate file"},
		{"missing CA file", func(t *testing.T, p *tlstest.PKI) {
			if err := os.Remove(p.Node.CAFile); err != nil {
				t.Fatal(err)
			}
		}, "tlsauth: load CA file"},
		{"key readable by others", func(t *testing.T, p *tlstest.PKI) {
			if err := os.Chmod(p.Node.KeyFile, 0o644); err != nil {
				t.Fatal(err)
			}
		}, `run "chmod 600`},
		{"key of another certificate", func(t *testing.T, p *tlstest.PKI) {
			data, err := os.ReadFile(p.Client.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			tlstest.WriteFile(t, p.Node.KeyFile, string(data), 0o600)
		}, "does not match"},
		{"truncated key", func(t *testing.T, p *tlstest.PKI) {
			tlstest.WriteFile(t, p.Node.KeyFile, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", 0o600)
		}, "tlsauth: load key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tlstest.NewPKI(t)
			before := p.NodeMaterial.Certificate()
			tt.breakIt(t, p)
			err := p.NodeMaterial.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload err = %v, want mention of %q", err, tt.want)
			}
			if p.NodeMaterial.Certificate() != before {
				t.Fatal("failed Reload replaced the material")
			}
			r := tlstest.Handshake(t, p.NodeServer, p.ClientMaterial.ClientConfig(tlsconf.Options{}))
			if r.ServerErr != nil || r.ClientErr != nil {
				t.Fatalf("handshake after failed Reload: server err %v, client err %v", r.ServerErr, r.ClientErr)
			}
		})
	}
}

// TestReloadRotatesCA replaces the CA and node certificate on disk: the same
// server configuration then refuses clients of the old CA and accepts those
// of the new one.
func TestReloadRotatesCA(t *testing.T) {
	p := tlstest.NewPKI(t)
	oldClient := p.ClientMaterial.ClientConfig(tlsconf.Options{})

	newCA := tlstest.NewCA(t)
	if err := newCA.WriteFiles(p.CAFile, filepath.Join(p.Dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	node, err := newCA.IssueNode(tlstest.TrustDomain, "n1", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlstest.WritePair(t, p.Dir, "node", p.CAFile, node)
	newClientFiles := tlstest.WritePair(t, p.Dir, "bob", p.CAFile, tlstest.IssueClient(t, newCA, "bob"))

	if err := p.NodeMaterial.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := p.NodeMaterial.Certificate().Leaf.CheckSignatureFrom(newCA.Cert); err != nil {
		t.Fatalf("reloaded certificate not from the new CA: %v", err)
	}

	if r := tlstest.Handshake(t, p.NodeServer, oldClient); r.ServerErr == nil {
		t.Error("client of the old CA accepted after rotation")
	}
	newClient, err := tlsconf.ClientConfigFromFiles(newClientFiles)
	if err != nil {
		t.Fatal(err)
	}
	r := tlstest.Handshake(t, p.NodeServer, newClient)
	if r.ServerErr != nil || r.ClientErr != nil {
		t.Fatalf("client of the new CA: server err %v, client err %v", r.ServerErr, r.ClientErr)
	}
	if id, _ := tlsauth.PeerIdentity(r.Server, tlstest.TrustDomain); id != (tlsauth.Identity{Name: "bob", Kind: tlsauth.KindClient}) {
		t.Errorf("identity %v, want client/bob", id)
	}
}

func TestReloadConcurrentWithHandshakes(t *testing.T) {
	p := tlstest.NewPKI(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if err := p.NodeMaterial.Reload(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for range 8 {
		r := tlstest.Handshake(t, p.NodeServer, p.ClientMaterial.ClientConfig(tlsconf.Options{}))
		if r.ServerErr != nil || r.ClientErr != nil {
			t.Errorf("server err %v, client err %v", r.ServerErr, r.ClientErr)
		}
	}
	wg.Wait()
}

func TestLoadMaterialKeyMode(t *testing.T) {
	p := tlstest.NewPKI(t)
	if err := os.Chmod(p.Client.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := tlsconf.LoadMaterial(p.Client)
	if !errors.Is(err, pki.ErrKeyFileMode) {
		t.Fatalf("err = %v, want ErrKeyFileMode", err)
	}
}
