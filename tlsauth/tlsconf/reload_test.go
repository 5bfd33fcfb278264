package tlsconf_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// rotate writes a new CA (replacing the bundle) and a node certificate it
// issued over p's node files, and returns the CA.
func rotate(t *testing.T, p *tlstest.PKI) *pki.CA {
	t.Helper()
	ca := tlstest.NewCA(t)
	if err := ca.WriteFiles(p.CAFile, filepath.Join(p.Dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	tlstest.WritePair(t, p.Dir, "node", p.CAFile, tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1"))
	return ca
}

// TestReloaderRefusesBadFiles: each kind of bad new file is refused with
// one log line naming the file and the problem; the material in use keeps
// serving; the same bad files are not reported again; fixing them reloads.
func TestReloaderRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, p *tlstest.PKI) string // returns the file to be named
		want    string
	}{
		{"unparsable certificate", func(t *testing.T, p *tlstest.PKI) string {
			tlstest.WriteFile(t, p.Node.CertFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0o644)
			return p.Node.CertFile
		}, "certificate 1"},
		{"key of another certificate", func(t *testing.T, p *tlstest.PKI) string {
			data, err := os.ReadFile(p.Client.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			tlstest.WriteFile(t, p.Node.KeyFile, string(data), 0o600)
			return p.Node.KeyFile
		}, "does not match"},
		{"key readable by others", func(t *testing.T, p *tlstest.PKI) string {
			tlstest.WritePair(t, p.Dir, "node", p.CAFile, tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n1"))
			if err := os.Chmod(p.Node.KeyFile, 0o644); err != nil {
				t.Fatal(err)
			}
			return p.Node.KeyFile
		}, `chmod 600`},
		{"new CA that did not sign the certificate", func(t *testing.T, p *tlstest.PKI) string {
			ca := tlstest.NewCA(t)
			if err := ca.WriteFiles(p.CAFile, filepath.Join(p.Dir, "ca.key")); err != nil {
				t.Fatal(err)
			}
			writeCRL(t, ca, p.Node.CRLFile, 2)
			return p.Node.CertFile
		}, "not issued by a CA in the CA file " + "CAFILE"},
		{"certificate of another CA", func(t *testing.T, p *tlstest.PKI) string {
			tlstest.WritePair(t, p.Dir, "node", p.CAFile, tlstest.IssueNode(t, tlstest.NewCA(t), tlstest.TrustDomain, "n1"))
			return p.Node.CertFile
		}, "not issued by a CA in the CA file"},
		{"expired certificate", func(t *testing.T, p *tlstest.PKI) string {
			now := time.Now()
			old := tlstest.Sign(t, p.CA, &x509.Certificate{
				Subject: pkix.Name{CommonName: "n1"}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour),
				DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			})
			tlstest.WritePair(t, p.Dir, "node", p.CAFile, tlstest.Issued(t, old))
			return p.Node.CertFile
		}, "certificate expired at"},
		{"CRL of another CA", func(t *testing.T, p *tlstest.PKI) string {
			writeCRL(t, tlstest.NewCA(t), p.Node.CRLFile, 2)
			return p.Node.CRLFile
		}, "not signed by a CA in the CA file"},
		{"truncated CRL", func(t *testing.T, p *tlstest.PKI) string {
			tlstest.WriteFile(t, p.Node.CRLFile, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", 0o644)
			return p.Node.CRLFile
		}, "CRL 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tlstest.NewPKI(t)
			p.Node.CRLFile = filepath.Join(p.Dir, "ca.crl")
			writeCRL(t, p.CA, p.Node.CRLFile, 1)
			if err := p.NodeMaterial.SetCRLFile(p.Node.CRLFile); err != nil {
				t.Fatal(err)
			}
			log, logs := newTestLogger()
			r := tlsconf.NewReloader(log)
			r.Add("client port", p.NodeMaterial)
			before := p.NodeMaterial.Certificate()

			file := tt.breakIt(t, p)
			want := strings.ReplaceAll(tt.want, "CAFILE", p.CAFile)
			err := r.Check("test")
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("Check err = %v, want mention of %q and %s", err, want, file)
			}
			if p.NodeMaterial.Certificate() != before {
				t.Fatal("a refused reload replaced the material")
			}
			if hs := tlstest.Handshake(t, p.NodeServer, p.ClientMaterial.ClientConfig(tlsconf.Options{})); hs.ServerErr != nil || hs.ClientErr != nil {
				t.Fatalf("handshake after a refused reload: server err %v, client err %v", hs.ServerErr, hs.ClientErr)
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
			writeCRL(t, ca, p.Node.CRLFile, 3)
			if err := r.Check("test"); err != nil {
				t.Fatalf("Check after fixing: %v", err)
			}
			if err := p.NodeMaterial.Certificate().Leaf.CheckSignatureFrom(ca.Cert); err != nil {
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
	p := tlstest.NewPKI(t)
	log, logs := newTestLogger()
	r := tlsconf.NewReloader(log)
	r.Add("client port", p.NodeMaterial)
	r.Add("peer port", p.ClientMaterial)
	r.Add("again", p.NodeMaterial) // the same material once, under both names
	nodeBefore, clientBefore := p.NodeMaterial.Certificate(), p.ClientMaterial.Certificate()

	// A new node certificate (good) and a broken client key.
	tlstest.WritePair(t, p.Dir, "node", p.CAFile, tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n1"))
	tlstest.WriteFile(t, p.Client.KeyFile, "garbage", 0o600)
	if err := r.Check("test"); err == nil {
		t.Fatal("Check accepted a broken key")
	}
	if p.NodeMaterial.Certificate() != nodeBefore || p.ClientMaterial.Certificate() != clientBefore {
		t.Fatal("part of a refused set was installed")
	}
	if !strings.Contains(logs.String(), "peer port: tlsauth: load key file "+p.Client.KeyFile) {
		t.Errorf("the refusal does not name the material and file:\n%s", logs)
	}

	tlstest.WritePair(t, p.Dir, "client", p.CAFile, tlstest.IssueClient(t, p.CA, "alice"))
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	if p.NodeMaterial.Certificate() == nodeBefore || p.ClientMaterial.Certificate() == clientBefore {
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
	p := tlstest.NewPKI(t)
	log, logs := newTestLogger()
	r := tlsconf.NewReloader(log)
	r.Add("client port", p.NodeMaterial)
	before := tlsconf.Generation(p.NodeMaterial)
	// Touching a file (same content) is not a change.
	data, err := os.ReadFile(p.Node.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	tlstest.WriteFile(t, p.Node.CertFile, string(data), 0o644)
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Errorf("Check without a change logged:\n%s", logs)
	}
	if err := r.Reload("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	if tlsconf.Generation(p.NodeMaterial) != before {
		t.Error("an unchanged material was replaced")
	}
	if !strings.Contains(logs.String(), "TLS material unchanged") || !strings.Contains(logs.String(), "trigger=SIGHUP") {
		t.Errorf("Reload without a change:\n%s", logs)
	}
	// A key whose mode is fixed after a refusal is a change.
	if err := os.Chmod(p.Node.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload("SIGHUP"); !errors.Is(err, pki.ErrKeyFileMode) {
		t.Fatalf("Reload with a key readable by the group: %v", err)
	}
	if err := os.Chmod(p.Node.KeyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRevokes: a CRL listing a client, reloaded, refuses its new
// connections.
func TestReloadRevokes(t *testing.T) {
	p := tlstest.NewPKI(t)
	f := p.Node
	f.CRLFile = filepath.Join(p.Dir, "ca.crl")
	writeCRL(t, p.CA, f.CRLFile, 1)
	m, err := tlsconf.LoadMaterial(f)
	if err != nil {
		t.Fatal(err)
	}
	srv := m.ServerConfig(tlsconf.Options{})
	if hs := tlstest.Handshake(t, srv, p.ClientMaterial.ClientConfig(tlsconf.Options{})); hs.ServerErr != nil {
		t.Fatalf("before revocation: %v", hs.ServerErr)
	}
	r := tlsconf.NewReloader(nil)
	r.Add("client port", m)
	writeCRL(t, p.CA, f.CRLFile, 2, p.ClientMaterial.Certificate().Leaf.SerialNumber, big.NewInt(7))
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	if hs := tlstest.Handshake(t, srv, p.ClientMaterial.ClientConfig(tlsconf.Options{})); !errors.Is(hs.ServerErr, tlsconf.ErrRevoked) {
		t.Fatalf("after revocation: server err %v, want ErrRevoked", hs.ServerErr)
	}
}

// TestPeerDialConfigFollowsReload: the per-dial peer configuration trusts
// a CA rotated after it was made, and presents the new certificate; a
// PeerClientConfig made before the rotation does not (its pool is fixed).
func TestPeerDialConfigFollowsReload(t *testing.T) {
	p := tlstest.NewPKI(t)
	n2Files := tlstest.WritePair(t, p.Dir, "n2", p.CAFile, tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n2"))
	n2, err := tlsconf.LoadMaterial(n2Files)
	if err != nil {
		t.Fatal(err)
	}
	srv := p.NodeMaterial.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, nil)
	dial := n2.PeerDialConfig(tlsconf.Options{}, tlstest.TrustDomain, nil)
	fixed := n2.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil)
	c1, _ := dial()
	if c2, _ := dial(); c1 != c2 {
		t.Error("the configuration is rebuilt without a change")
	}
	if hs := tlstest.Handshake(t, srv, c1); hs.ServerErr != nil || hs.ClientErr != nil {
		t.Fatalf("before rotation: %v, %v", hs.ServerErr, hs.ClientErr)
	}

	ca := rotate(t, p)
	tlstest.WritePair(t, p.Dir, "n2", p.CAFile, tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n2"))
	r := tlsconf.NewReloader(nil)
	r.Add("n1", p.NodeMaterial)
	r.Add("n2", n2)
	if err := r.Check("test"); err != nil {
		t.Fatal(err)
	}
	cfg, err := dial()
	if err != nil || cfg == c1 {
		t.Fatalf("dial config after reload: %v (unchanged: %v)", err, cfg == c1)
	}
	hs := tlstest.Handshake(t, srv, cfg)
	if hs.ServerErr != nil || hs.ClientErr != nil {
		t.Fatalf("after rotation: server err %v, client err %v", hs.ServerErr, hs.ClientErr)
	}
	if !hs.Server.PeerCertificates[0].Equal(n2.Certificate().Leaf) {
		t.Error("the dial presented the old certificate")
	}
	if hs := tlstest.Handshake(t, srv, fixed); hs.ClientErr == nil {
		t.Error("a PeerClientConfig made before the rotation trusted the new CA")
	}
}
