package tlsauth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReloadFailureKeepsMaterial(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, p *testPKI)
		want    string
	}{
		{"garbage certificate", func(t *testing.T, p *testPKI) {
			mustWrite(t, p.node.CertFile, "not a certificate", 0o644)
		}, "tlsauth: load certificate file"},
		{"missing CA file", func(t *testing.T, p *testPKI) {
			if err := os.Remove(p.node.CAFile); err != nil {
				t.Fatal(err)
			}
		}, "tlsauth: load CA file"},
		{"key readable by others", func(t *testing.T, p *testPKI) {
			if err := os.Chmod(p.node.KeyFile, 0o644); err != nil {
				t.Fatal(err)
			}
		}, `run "chmod 600`},
		{"key of another certificate", func(t *testing.T, p *testPKI) {
			data, err := os.ReadFile(p.client.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, p.node.KeyFile, string(data), 0o600)
		}, "does not match"},
		{"truncated key", func(t *testing.T, p *testPKI) {
			mustWrite(t, p.node.KeyFile, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", 0o600)
		}, "tlsauth: load key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPKI(t)
			before := p.nodeMat.Certificate()
			tt.breakIt(t, p)
			err := p.nodeMat.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload err = %v, want mention of %q", err, tt.want)
			}
			if p.nodeMat.Certificate() != before {
				t.Fatal("failed Reload replaced the material")
			}
			r := handshake(t, p.nodeServer, p.clientMat.ClientConfig(Options{}))
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("handshake after failed Reload: server err %v, client err %v", r.serverErr, r.clientErr)
			}
		})
	}
}

// TestReloadRotatesCA replaces the CA and node certificate on disk: the same
// server configuration then refuses clients of the old CA and accepts those
// of the new one.
func TestReloadRotatesCA(t *testing.T) {
	p := newTestPKI(t)
	oldClient := p.clientMat.ClientConfig(Options{})

	newCA := newTestCA(t)
	if err := newCA.WriteFiles(p.caFile, filepath.Join(p.dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	node, err := newCA.IssueNode(testTD, "n1", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeTestPair(t, p.dir, "node", p.caFile, node)
	newClientFiles := writeTestPair(t, p.dir, "bob", p.caFile, mustIssueClient(t, newCA, "bob"))

	if err := p.nodeMat.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := p.nodeMat.Certificate().Leaf.CheckSignatureFrom(newCA.Cert); err != nil {
		t.Fatalf("reloaded certificate not from the new CA: %v", err)
	}

	if r := handshake(t, p.nodeServer, oldClient); r.serverErr == nil {
		t.Error("client of the old CA accepted after rotation")
	}
	newClient, err := ClientConfigFromFiles(newClientFiles)
	if err != nil {
		t.Fatal(err)
	}
	r := handshake(t, p.nodeServer, newClient)
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("client of the new CA: server err %v, client err %v", r.serverErr, r.clientErr)
	}
	if id, _ := PeerIdentity(r.server, testTD); id != (Identity{"bob", KindClient}) {
		t.Errorf("identity %v, want client/bob", id)
	}
}

func TestReloadConcurrentWithHandshakes(t *testing.T) {
	p := newTestPKI(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if err := p.nodeMat.Reload(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for range 8 {
		r := handshake(t, p.nodeServer, p.clientMat.ClientConfig(Options{}))
		if r.serverErr != nil || r.clientErr != nil {
			t.Errorf("server err %v, client err %v", r.serverErr, r.clientErr)
		}
	}
	wg.Wait()
}

func TestLoadMaterialKeyMode(t *testing.T) {
	p := newTestPKI(t)
	if err := os.Chmod(p.client.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := LoadMaterial(p.client)
	if !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("err = %v, want ErrKeyFileMode", err)
	}
}

func mustWrite(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
