package tlsauth

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rotate writes a new CA (replacing the bundle) and a node certificate it
// issued over p's node files, and returns the CA.
func rotate(t *testing.T, p *testPKI) *CA {
	t.Helper()
	ca := newTestCA(t)
	if err := ca.WriteFiles(p.caFile, filepath.Join(p.dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	writeTestPair(t, p.dir, "node", p.caFile, mustIssueNode(t, ca, testTD, "n1"))
	return ca
}

// TestReloaderRefusesBadFiles: each kind of bad new file is refused with
// one log line naming the file and the problem; the material in use keeps
// serving; the same bad files are not reported again; fixing them reloads.
func TestReloaderRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, p *testPKI) string // returns the file to be named
		want    string
	}{
		{"unparsable certificate", func(t *testing.T, p *testPKI) string {
			mustWrite(t, p.node.CertFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0o644)
			return p.node.CertFile
		}, "certificate 1"},
		{"key of another certificate", func(t *testing.T, p *testPKI) string {
			data, err := os.ReadFile(p.client.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, p.node.KeyFile, string(data), 0o600)
			return p.node.KeyFile
		}, "does not match"},
		{"key readable by others", func(t *testing.T, p *testPKI) string {
			writeTestPair(t, p.dir, "node", p.caFile, mustIssueNode(t, p.ca, testTD, "n1"))
			if err := os.Chmod(p.node.KeyFile, 0o644); err != nil {
				t.Fatal(err)
			}
			return p.node.KeyFile
		}, `chmod 600`},
		{"new CA that did not sign the certificate", func(t *testing.T, p *testPKI) string {
			ca := newTestCA(t)
			if err := ca.WriteFiles(p.caFile, filepath.Join(p.dir, "ca.key")); err != nil {
				t.Fatal(err)
			}
			writeCRL(t, ca, p.node.CRLFile, 2)
			return p.node.CertFile
		}, "not issued by a CA in the CA file " + "CAFILE"},
		{"certificate of another CA", func(t *testing.T, p *testPKI) string {
			writeTestPair(t, p.dir, "node", p.caFile, mustIssueNode(t, newTestCA(t), testTD, "n1"))
			return p.node.CertFile
		}, "not issued by a CA in the CA file"},
		{"expired certificate", func(t *testing.T, p *testPKI) string {
			now := time.Now()
			old := signLeaf(t, p.ca, &x509.Certificate{
				Subject: pkix.Name{CommonName: "n1"}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour),
				DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			})
			keyPEM, err := encodeKeyPEM(old.PrivateKey.(crypto.Signer))
			if err != nil {
				t.Fatal(err)
			}
			writeTestPair(t, p.dir, "node", p.caFile, Issued{CertPEM: encodeCertPEM(old.Certificate[0]), KeyPEM: keyPEM})
			return p.node.CertFile
		}, "certificate expired at"},
		{"CRL of another CA", func(t *testing.T, p *testPKI) string {
			writeCRL(t, newTestCA(t), p.node.CRLFile, 2)
			return p.node.CRLFile
		}, "not signed by a CA in the CA file"},
		{"truncated CRL", func(t *testing.T, p *testPKI) string {
			mustWrite(t, p.node.CRLFile, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", 0o644)
			return p.node.CRLFile
		}, "CRL 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPKI(t)
			p.node.CRLFile = filepath.Join(p.dir, "ca.crl")
			writeCRL(t, p.ca, p.node.CRLFile, 1)
			if err := p.nodeMat.SetCRLFile(p.node.CRLFile); err != nil {
				t.Fatal(err)
			}
			log, logs := newTestLogger()
			r := NewReloader(log)
			r.Add("client port", p.nodeMat)
			before := p.nodeMat.Certificate()

			file := tt.breakIt(t, p)
			want := strings.ReplaceAll(tt.want, "CAFILE", p.caFile)
			err := r.Check("test")
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("Check err = %v, want mention of %q and %s", err, want, file)
			}
			if p.nodeMat.Certificate() != before {
				t.Fatal("a refused reload replaced the material")
			}
			if hs := handshake(t, p.nodeServer, p.clientMat.ClientConfig(Options{})); hs.serverErr != nil || hs.clientErr != nil {
				t.Fatalf("handshake after a refused reload: server err %v, client err %v", hs.serverErr, hs.clientErr)
			}
			// The same files again: nothing new to say.
			if err := r.Check("test"); err != nil {
				t.Errorf("second Check of the same files: %v", err)
			}
			if n := strings.Count(logs.String(), "TLS reload refused"); n != 1 {
				t.Errorf("%d refusal lines, want 1:\n%s", n, logs)
			}
			if line := logs.String(); !strings.Contains(line, file) || !strings.Contains(line, "level=ERROR") {
				t.Errorf("the refusal does not name %s:\n%s", file, line)
			}

			// Fixed files (a whole new set) are loaded.
			ca := rotate(t, p)
			writeCRL(t, ca, p.node.CRLFile, 3)
			if err := r.Check("test"); err != nil {
				t.Fatalf("Check after fixing: %v", err)
			}
			if err := p.nodeMat.Certificate().Leaf.CheckSignatureFrom(ca.Cert); err != nil {
				t.Fatalf("the fixed material is not in use: %v", err)
			}
			if !strings.Contains(logs.String(), "TLS material reloaded") {
				t.Errorf("no reload logged:\n%s", logs)
			}
		})
	}
}

// TestReloaderAllOrNothing: a set of materials is replaced only as a
// whole.
func TestReloaderAllOrNothing(t *testing.T) {
	p := newTestPKI(t)
	log, logs := newTestLogger()
	r := NewReloader(log)
	r.Add("client port", p.nodeMat)
	r.Add("peer port", p.clientMat)
	r.Add("again", p.nodeMat) // the same material once, under both names
	nodeBefore, clientBefore := p.nodeMat.Certificate(), p.clientMat.Certificate()

	// A new node certificate (good) and a broken client key.
	writeTestPair(t, p.dir, "node", p.caFile, mustIssueNode(t, p.ca, testTD, "n1"))
	mustWrite(t, p.client.KeyFile, "garbage", 0o600)
	if err := r.Check("test"); err == nil {
		t.Fatal("Check accepted a broken key")
	}
	if p.nodeMat.Certificate() != nodeBefore || p.clientMat.Certificate() != clientBefore {
		t.Fatal("part of a refused set was installed")
	}
	if !strings.Contains(logs.String(), "peer port: tlsauth: load key file "+p.client.KeyFile) {
		t.Errorf("the refusal does not name the material and file:\n%s", logs)
	}

	writeTestPair(t, p.dir, "client", p.caFile, mustIssueClient(t, p.ca, "alice"))
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	if p.nodeMat.Certificate() == nodeBefore || p.clientMat.Certificate() == clientBefore {
		t.Fatal("the good set was not installed")
	}
	if !strings.Contains(logs.String(), `material="client port, again"`) {
		t.Errorf("a material added twice is not named once with both names:\n%s", logs)
	}
}

// TestReloaderUnchanged: a change notification without a change says
// nothing and keeps the material (and so the cached handshake
// configuration); an explicit Reload says it found nothing new.
func TestReloaderUnchanged(t *testing.T) {
	p := newTestPKI(t)
	log, logs := newTestLogger()
	r := NewReloader(log)
	r.Add("client port", p.nodeMat)
	before := p.nodeMat.cur.Load()
	// Touching a file (same content) is not a change.
	data, err := os.ReadFile(p.node.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, p.node.CertFile, string(data), 0o644)
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Errorf("Check without a change logged:\n%s", logs)
	}
	if err := r.Reload("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	if p.nodeMat.cur.Load() != before {
		t.Error("an unchanged material was replaced")
	}
	if !strings.Contains(logs.String(), "TLS material unchanged") || !strings.Contains(logs.String(), "trigger=SIGHUP") {
		t.Errorf("Reload without a change:\n%s", logs)
	}
	// A key whose mode is fixed after a refusal is a change.
	if err := os.Chmod(p.node.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload("SIGHUP"); !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("Reload with a key readable by the group: %v", err)
	}
	if err := os.Chmod(p.node.KeyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRevokes: a CRL listing a client, reloaded, refuses its new
// connections.
func TestReloadRevokes(t *testing.T) {
	p := newTestPKI(t)
	f := p.node
	f.CRLFile = filepath.Join(p.dir, "ca.crl")
	writeCRL(t, p.ca, f.CRLFile, 1)
	m, err := LoadMaterial(f)
	if err != nil {
		t.Fatal(err)
	}
	srv := m.ServerConfig(Options{})
	if hs := handshake(t, srv, p.clientMat.ClientConfig(Options{})); hs.serverErr != nil {
		t.Fatalf("before revocation: %v", hs.serverErr)
	}
	r := NewReloader(nil)
	r.Add("client port", m)
	writeCRL(t, p.ca, f.CRLFile, 2, p.clientMat.Certificate().Leaf.SerialNumber, big.NewInt(7))
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	if hs := handshake(t, srv, p.clientMat.ClientConfig(Options{})); !errors.Is(hs.serverErr, ErrRevoked) {
		t.Fatalf("after revocation: server err %v, want ErrRevoked", hs.serverErr)
	}
}

// TestPeerDialConfigFollowsReload: the per-dial peer configuration trusts
// a CA rotated after it was made, and presents the new certificate; a
// PeerClientConfig made before the rotation does not (its pool is fixed).
func TestPeerDialConfigFollowsReload(t *testing.T) {
	p := newTestPKI(t)
	n2Files := writeTestPair(t, p.dir, "n2", p.caFile, mustIssueNode(t, p.ca, testTD, "n2"))
	n2, err := LoadMaterial(n2Files)
	if err != nil {
		t.Fatal(err)
	}
	srv := p.nodeMat.PeerServerConfig(Options{}, testTD, nil)
	dial := n2.PeerDialConfig(Options{}, testTD, nil)
	fixed := n2.PeerClientConfig(Options{}, testTD, nil)
	c1, _ := dial()
	if c2, _ := dial(); c1 != c2 {
		t.Error("the configuration is rebuilt without a change")
	}
	if hs := handshake(t, srv, c1); hs.serverErr != nil || hs.clientErr != nil {
		t.Fatalf("before rotation: %v, %v", hs.serverErr, hs.clientErr)
	}

	ca := rotate(t, p)
	writeTestPair(t, p.dir, "n2", p.caFile, mustIssueNode(t, ca, testTD, "n2"))
	r := NewReloader(nil)
	r.Add("n1", p.nodeMat)
	r.Add("n2", n2)
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	cfg, err := dial()
	if err != nil || cfg == c1 {
		t.Fatalf("dial config after reload: %v (unchanged: %v)", err, cfg == c1)
	}
	hs := handshake(t, srv, cfg)
	if hs.serverErr != nil || hs.clientErr != nil {
		t.Fatalf("after rotation: server err %v, client err %v", hs.serverErr, hs.clientErr)
	}
	if !hs.server.PeerCertificates[0].Equal(n2.Certificate().Leaf) {
		t.Error("the dial presented the old certificate")
	}
	if hs := handshake(t, srv, fixed); hs.clientErr == nil {
		t.Error("a PeerClientConfig made before the rotation trusted the new CA")
	}
}
