package pki_test

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func readAll(t *testing.T, p pki.Dev) map[string][]byte {
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
	p, created, err := pki.EnsureDev(dir, "n1", tlstest.TrustDomain, []string{"10.1.2.3"})
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
	node, err := tlsconf.LoadMaterial(tlsconf.DevFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "10.1.2.3"} {
		if err := node.Certificate().Leaf.VerifyHostname(h); err != nil {
			t.Errorf("node certificate: %v", err)
		}
	}
	cli, err := tlsconf.ClientConfigFromFiles(tlsconf.DevClientFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	r := tlstest.Handshake(t, node.ServerConfig(tlsconf.Options{}), cli)
	if id, err := tlsauth.PeerIdentity(r.Server, tlstest.TrustDomain); r.ServerErr != nil || err != nil || id != (tlsauth.Identity{Name: "root", Kind: tlsauth.KindClient}) {
		t.Fatalf("server err %v, identity %v (%v), want client/root", r.ServerErr, id, err)
	}

	first := readAll(t, p)
	t.Run("idempotent", func(t *testing.T) {
		_, created, err := pki.EnsureDev(dir, "n1", tlstest.TrustDomain, []string{"10.1.2.3", "localhost"})
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
		_, created, err := pki.EnsureDev(dir, "n1", tlstest.TrustDomain, []string{"node1.example"})
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
		m, err := tlsconf.LoadMaterial(tlsconf.DevFiles(p))
		if err != nil {
			t.Fatal(err)
		}
		leaf := m.Certificate().Leaf
		for _, h := range []string{"127.0.0.1", "::1", "localhost", "node1.example"} {
			if err := leaf.VerifyHostname(h); err != nil {
				t.Errorf("reissued node certificate: %v", err)
			}
		}
		ca, err := pki.LoadCA(p.CAFile, p.CAKeyFile)
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
		_, created, err := pki.EnsureDev(dir, "n1", tlstest.TrustDomain, nil)
		if err != nil || created {
			t.Fatalf("created=%v err=%v", created, err)
		}
		if _, err := tlsconf.ClientConfigFromFiles(tlsconf.DevClientFiles(p)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, p)["ca.crt"], first["ca.crt"]) {
			t.Error("CA changed")
		}
	})
	t.Run("renamed node", func(t *testing.T) {
		if _, _, err := pki.EnsureDev(dir, "n2", tlstest.TrustDomain, nil); err != nil {
			t.Fatal(err)
		}
		m, err := tlsconf.LoadMaterial(tlsconf.DevFiles(p))
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := tlsauth.IdentityFromCert(m.Certificate().Leaf, tlstest.TrustDomain); id != (tlsauth.Identity{Name: "n2", Kind: tlsauth.KindNode}) {
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
			tlstest.WriteFile(t, filepath.Join(dir, "ca.key"), "x", 0o600)
		}, "n1", tlstest.TrustDomain, nil, pki.ErrIncompleteDevPKI},
		{"CA certificate without key", func(t *testing.T, dir string) {
			tlstest.WriteFile(t, filepath.Join(dir, "ca.crt"), "x", 0o644)
		}, "n1", tlstest.TrustDomain, nil, pki.ErrIncompleteDevPKI},
		{"CA key readable by others", func(t *testing.T, dir string) {
			ca := tlstest.NewCA(t)
			if err := ca.WriteFiles(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, "ca.key"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "n1", tlstest.TrustDomain, nil, pki.ErrKeyFileMode},
		{"bad node name", nil, "n/1", tlstest.TrustDomain, nil, tlsauth.ErrInvalidName},
		{"bad trust domain", nil, "n1", "Cairn", nil, tlsauth.ErrInvalidTrustDomain},
		{"host with port", nil, "n1", tlstest.TrustDomain, []string{"10.0.0.1:4001"}, pki.ErrInvalidHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			_, created, err := pki.EnsureDev(dir, tt.node, tt.td, tt.hosts)
			if created || err == nil {
				t.Fatalf("created=%v err=%v", created, err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// nodeCertBytes returns the contents of the node pair in f; a missing file
// reads as nil.
func nodeCertBytes(t *testing.T, f tlsconf.Files) [2][]byte {
	t.Helper()
	var out [2][]byte
	for i, name := range []string{f.CertFile, f.KeyFile} {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// TestEnsureNodeCertCluster forms the local cluster EnsureNodeCert is for:
// n1 makes the development PKI, n2 gets a node certificate from its CA, and
// the two speak on the peer port in both directions.
func TestEnsureNodeCertCluster(t *testing.T) {
	root := t.TempDir()
	p, _, err := pki.EnsureDev(filepath.Join(root, "n1", "pki"), "n1", tlstest.TrustDomain, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "n2", "pki")
	d, err := pki.EnsureNodeCert(dir, p.CAFile, p.CAKeyFile, "n2", tlstest.TrustDomain, []string{"10.1.2.3"})
	if err != nil {
		t.Fatalf("EnsureNodeCert: %v", err)
	}
	f := tlsconf.DevFiles(d)
	want := tlsconf.Files{CAFile: p.CAFile, CertFile: filepath.Join(dir, "node.crt"), KeyFile: filepath.Join(dir, "node.key")}
	if f != want {
		t.Errorf("Files = %+v, want %+v", f, want)
	}
	assertMode(t, dir, 0o700)
	assertMode(t, f.CertFile, 0o644)
	assertMode(t, f.KeyFile, 0o600)
	assertNoTempFiles(t, dir)

	n1, err := tlsconf.LoadMaterial(tlsconf.DevFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := tlsconf.LoadMaterial(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1", "::1", "localhost", "10.1.2.3"} {
		if err := n2.Certificate().Leaf.VerifyHostname(h); err != nil {
			t.Errorf("node certificate: %v", err)
		}
	}
	for _, tt := range []struct {
		name     string
		srv, cli *tlsconf.Material
		want     tlsauth.Identity
	}{
		{"n2 dials n1", n1, n2, tlsauth.Identity{Name: "n2", Kind: tlsauth.KindNode}},
		{"n1 dials n2", n2, n1, tlsauth.Identity{Name: "n1", Kind: tlsauth.KindNode}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tlstest.Handshake(t, tt.srv.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, nil), tt.cli.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil))
			if r.ServerErr != nil || r.ClientErr != nil {
				t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
			}
			if id, err := tlsauth.PeerIdentity(r.Server, tlstest.TrustDomain); err != nil || id != tt.want {
				t.Errorf("server sees %v (%v), want %v", id, err, tt.want)
			}
		})
	}
}

// newLongCA is a CA that outlives devRenewBefore: leaves expire with their
// CA, so those of newTestCA are always due for renewal.
func newLongCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(tlstest.TrustDomain, pki.DevCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writeCA writes ca as dir/ca.crt and dir/ca.key and returns their paths.
func writeCA(t *testing.T, dir string, ca *pki.CA) (caFile, caKeyFile string) {
	t.Helper()
	caFile, caKeyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := ca.WriteFiles(caFile, caKeyFile); err != nil {
		t.Fatal(err)
	}
	return caFile, caKeyFile
}

// TestEnsureNodeCertReissue makes a node certificate, changes one thing,
// and checks whether a second call rewrote the pair.
func TestEnsureNodeCertReissue(t *testing.T) {
	hosts := []string{"10.1.2.3", "node2.example"}
	tests := []struct {
		name  string
		setup func(t *testing.T, f tlsconf.Files) // may change the files before the second call
		// The second call's arguments; zero means those of the first.
		node    string
		hosts   []string
		ca      *pki.CA
		reissue bool
	}{
		{name: "same arguments"},
		{name: "same hosts reordered, in other case, repeated", hosts: []string{"NODE2.example", "10.1.2.3", "10.1.2.3", "localhost"}},
		{name: "fewer hosts", hosts: []string{"10.1.2.3"}},
		{name: "new host", hosts: []string{"10.1.2.3", "node2.example", "10.9.9.9"}, reissue: true},
		{name: "other name", node: "n3", reissue: true},
		{name: "other CA", ca: newLongCA(t), reissue: true},
		{name: "close to expiry", reissue: true, setup: func(t *testing.T, f tlsconf.Files) {
			ca, err := pki.LoadCA(f.CAFile, filepath.Join(filepath.Dir(f.CAFile), "ca.key"))
			if err != nil {
				t.Fatal(err)
			}
			iss, err := ca.IssueNode(tlstest.TrustDomain, "n2", append(append([]string(nil), pki.DevHosts...), hosts...), pki.DevRenewBefore-time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := pki.WritePair(iss, f.CertFile, f.KeyFile); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "serverAuth usage only", reissue: true, setup: func(t *testing.T, f tlsconf.Files) {
			ca, err := pki.LoadCA(f.CAFile, filepath.Join(filepath.Dir(f.CAFile), "ca.key"))
			if err != nil {
				t.Fatal(err)
			}
			tmpl := tlstest.PeerTemplate("n2", "spiffe://"+tlstest.TrustDomain+"/node/n2")
			tmpl.NotAfter = time.Now().Add(pki.DevLeafValidity)
			tmpl.IPAddresses, tmpl.DNSNames, _ = pki.SplitHosts(append(append([]string(nil), pki.DevHosts...), hosts...))
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			c := tlstest.Sign(t, ca, tmpl)
			if err := pki.WritePair(tlstest.Issued(t, c), f.CertFile, f.KeyFile); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "key missing", reissue: true, setup: func(t *testing.T, f tlsconf.Files) {
			if err := os.Remove(f.KeyFile); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "key of another pair", reissue: true, setup: func(t *testing.T, f tlsconf.Files) {
			other := tlstest.NewCA(t)
			iss, err := other.IssueNode(tlstest.TrustDomain, "n2", nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			tlstest.WriteFile(t, f.KeyFile, string(iss.KeyPEM), 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			caFile, caKeyFile := writeCA(t, root, newLongCA(t))
			dir := filepath.Join(root, "n2")
			d, err := pki.EnsureNodeCert(dir, caFile, caKeyFile, "n2", tlstest.TrustDomain, hosts)
			if err != nil {
				t.Fatalf("first EnsureNodeCert: %v", err)
			}
			f := tlsconf.DevFiles(d)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			before := nodeCertBytes(t, f)

			node, h := "n2", hosts
			if tt.node != "" {
				node = tt.node
			}
			if tt.hosts != nil {
				h = tt.hosts
			}
			if tt.ca != nil {
				caFile, caKeyFile = filepath.Join(root, "ca2.crt"), filepath.Join(root, "ca2.key")
				if err := tt.ca.WriteFiles(caFile, caKeyFile); err != nil {
					t.Fatal(err)
				}
			}
			d, err = pki.EnsureNodeCert(dir, caFile, caKeyFile, node, tlstest.TrustDomain, h)
			if err != nil {
				t.Fatalf("second EnsureNodeCert: %v", err)
			}
			f = tlsconf.DevFiles(d)
			after := nodeCertBytes(t, f)
			if changed := !bytes.Equal(before[0], after[0]) || !bytes.Equal(before[1], after[1]); changed != tt.reissue {
				t.Fatalf("rewritten = %v, want %v", changed, tt.reissue)
			}
			ca, err := pki.LoadCA(caFile, caKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			if !pki.LeafUsable(ca, f.CertFile, f.KeyFile, tlstest.TrustDomain, tlsauth.Identity{Name: node, Kind: tlsauth.KindNode}, append(append([]string(nil), pki.DevHosts...), h...), time.Now()) {
				t.Error("the pair left behind is not usable for the second call's arguments")
			}
			assertNoTempFiles(t, dir)
		})
	}
}

func TestEnsureNodeCertErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, caFile, caKeyFile string)
		node  string
		td    string
		hosts []string
		want  error
	}{
		{name: "CA key readable by others", setup: func(t *testing.T, caFile, caKeyFile string) {
			if err := os.Chmod(caKeyFile, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: pki.ErrKeyFileMode},
		{name: "CA key missing", setup: func(t *testing.T, caFile, caKeyFile string) {
			if err := os.Remove(caKeyFile); err != nil {
				t.Fatal(err)
			}
		}, want: fs.ErrNotExist},
		{name: "CA key of another CA", setup: func(t *testing.T, caFile, caKeyFile string) {
			if err := tlstest.NewCA(t).WriteFiles(filepath.Join(t.TempDir(), "other.crt"), caKeyFile); err != nil {
				t.Fatal(err)
			}
		}, want: pki.ErrKeyMismatch},
		{name: "bad node name", node: "n/2", want: tlsauth.ErrInvalidName},
		{name: "bad trust domain", td: "Cairn", want: tlsauth.ErrInvalidTrustDomain},
		{name: "host with port", hosts: []string{"10.0.0.1:4001"}, want: pki.ErrInvalidHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			caFile, caKeyFile := writeCA(t, root, tlstest.NewCA(t))
			if tt.setup != nil {
				tt.setup(t, caFile, caKeyFile)
			}
			node, td := cmp.Or(tt.node, "n2"), cmp.Or(tt.td, tlstest.TrustDomain)
			dir := filepath.Join(root, "n2")
			d, err := pki.EnsureNodeCert(dir, caFile, caKeyFile, node, td, tt.hosts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d != (pki.Dev{}) {
				t.Errorf("Files = %+v with an error", d)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("refused call left %s behind (stat: %v)", dir, err)
			}
		})
	}
}
