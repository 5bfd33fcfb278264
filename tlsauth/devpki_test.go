package tlsauth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func readAll(t *testing.T, p DevPKI) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	for _, f := range []string{p.CAFile, p.CAKeyFile, p.CertFile, p.KeyFile, p.ClientCertFile, p.ClientKeyFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestEnsureDevPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "tls")
	p, created, err := EnsureDevPKI(dir, "n1", testTD, []string{"10.1.2.3"})
	if err != nil || !created {
		t.Fatalf("first EnsureDevPKI: created=%v err=%v", created, err)
	}
	assertMode(t, dir, 0o700)
	for _, f := range []string{p.CAKeyFile, p.KeyFile, p.ClientKeyFile} {
		assertMode(t, f, 0o600)
	}
	for _, f := range []string{p.CAFile, p.CertFile, p.ClientCertFile} {
		assertMode(t, f, 0o644)
	}
	if p.CAFile != filepath.Join(dir, "ca.crt") || p.ClientKeyFile != filepath.Join(dir, "client.key") {
		t.Errorf("paths %+v", p)
	}

	// The material works: root connects to the node.
	node, err := LoadMaterial(p.Files())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "10.1.2.3"} {
		if err := node.Certificate().Leaf.VerifyHostname(h); err != nil {
			t.Errorf("node certificate: %v", err)
		}
	}
	cli, err := ClientConfigFromFiles(p.ClientFiles())
	if err != nil {
		t.Fatal(err)
	}
	r := handshake(t, node.ServerConfig(Options{}), cli)
	if id, err := PeerIdentity(r.server, testTD); r.serverErr != nil || err != nil || id != (Identity{"root", KindClient}) {
		t.Fatalf("server err %v, identity %v (%v), want client/root", r.serverErr, id, err)
	}

	first := readAll(t, p)
	t.Run("idempotent", func(t *testing.T) {
		_, created, err := EnsureDevPKI(dir, "n1", testTD, []string{"10.1.2.3", "localhost"})
		if err != nil || created {
			t.Fatalf("created=%v err=%v", created, err)
		}
		for name, b := range readAll(t, p) {
			if !bytes.Equal(b, first[name]) {
				t.Errorf("%s changed", name)
			}
		}
	})
	t.Run("new host reissues the node certificate only", func(t *testing.T) {
		_, created, err := EnsureDevPKI(dir, "n1", testTD, []string{"node1.example"})
		if err != nil || created {
			t.Fatalf("created=%v err=%v", created, err)
		}
		now := readAll(t, p)
		for _, name := range []string{"ca.crt", "ca.key", "client.crt", "client.key"} {
			if !bytes.Equal(now[name], first[name]) {
				t.Errorf("%s changed", name)
			}
		}
		if bytes.Equal(now["node.crt"], first["node.crt"]) {
			t.Fatal("node.crt not reissued")
		}
		m, err := LoadMaterial(p.Files())
		if err != nil {
			t.Fatal(err)
		}
		leaf := m.Certificate().Leaf
		for _, h := range []string{"127.0.0.1", "::1", "localhost", "node1.example"} {
			if err := leaf.VerifyHostname(h); err != nil {
				t.Errorf("reissued node certificate: %v", err)
			}
		}
		ca, err := LoadCA(p.CAFile, p.CAKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
			t.Errorf("reissued node certificate not from the existing CA: %v", err)
		}
	})
	t.Run("missing leaf is reissued from the same CA", func(t *testing.T) {
		if err := os.Remove(p.ClientKeyFile); err != nil {
			t.Fatal(err)
		}
		_, created, err := EnsureDevPKI(dir, "n1", testTD, nil)
		if err != nil || created {
			t.Fatalf("created=%v err=%v", created, err)
		}
		if _, err := ClientConfigFromFiles(p.ClientFiles()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, p)["ca.crt"], first["ca.crt"]) {
			t.Error("CA changed")
		}
	})
	t.Run("renamed node", func(t *testing.T) {
		if _, _, err := EnsureDevPKI(dir, "n2", testTD, nil); err != nil {
			t.Fatal(err)
		}
		m, err := LoadMaterial(p.Files())
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := IdentityFromCert(m.Certificate().Leaf, testTD); id != (Identity{"n2", KindNode}) {
			t.Errorf("node identity %v, want node/n2", id)
		}
	})
}

func TestEnsureDevPKIErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		node  string
		td    string
		hosts []string
		want  error
	}{
		{"CA key without certificate", func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "ca.key"), "x", 0o600)
		}, "n1", testTD, nil, ErrIncompleteDevPKI},
		{"CA certificate without key", func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "ca.crt"), "x", 0o644)
		}, "n1", testTD, nil, ErrIncompleteDevPKI},
		{"CA key readable by others", func(t *testing.T, dir string) {
			ca := newTestCA(t)
			if err := ca.WriteFiles(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, "ca.key"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "n1", testTD, nil, ErrKeyFileMode},
		{"bad node name", nil, "n/1", testTD, nil, ErrInvalidName},
		{"bad trust domain", nil, "n1", "Cairn", nil, ErrInvalidTrustDomain},
		{"host with port", nil, "n1", testTD, []string{"10.0.0.1:4001"}, ErrInvalidHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			_, created, err := EnsureDevPKI(dir, tt.node, tt.td, tt.hosts)
			if created || err == nil {
				t.Fatalf("created=%v err=%v", created, err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
