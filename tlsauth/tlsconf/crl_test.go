package tlsconf_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// syncBuffer is a log sink safe for handlers writing from handshakes while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newTestLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// writeCRL writes a CRL of ca revoking serials to path.
func writeCRL(t *testing.T, ca *pki.CA, path string, number int64, serials ...*big.Int) {
	t.Helper()
	crl, err := ca.RevocationList(number, serials, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlstest.WriteFile(t, path, string(crl), 0o644)
}

// staleCRL is a DER CRL of ca whose NextUpdate has passed.
func staleCRL(t *testing.T, ca *pki.CA, serials ...*big.Int) []byte {
	t.Helper()
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-90 * time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestCRLHandshakes: a certificate listed by the CRL is refused at the
// handshake on every kind of configuration (client API server, peer
// server, peer client, plain client), and the refusal names the serial.
func TestCRLHandshakes(t *testing.T) {
	p := tlstest.NewPKI(t)
	mallory := loadIssued(t, p, "mallory", tlstest.IssueClient(t, p.CA, "mallory"))
	n2 := loadIssued(t, p, "n2", tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n2"))
	revokedNode := loadIssued(t, p, "n3", tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n3"))
	crlFile := filepath.Join(p.Dir, "ca.crl")
	writeCRL(t, p.CA, crlFile, 1, mallory.Certificate().Leaf.SerialNumber, revokedNode.Certificate().Leaf.SerialNumber)
	// The node's material with the CRL, as a server and as a client.
	if err := p.NodeMaterial.SetCRLFile(crlFile); err != nil {
		t.Fatalf("SetCRLFile: %v", err)
	}
	if got := p.NodeMaterial.Files().CRLFile; got != crlFile {
		t.Fatalf("Files().CRLFile = %q", got)
	}
	// A node whose own material revokes the server it dials.
	n2Strict := loadIssued(t, p, "n2strict", tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n2"))
	if err := n2Strict.SetCRLFile(crlFile); err != nil {
		t.Fatal(err)
	}
	revokedServer := revokedNode.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, nil)
	dial, _ := n2Strict.PeerDialConfig(tlsconf.Options{}, tlstest.TrustDomain, nil)()

	tests := []struct {
		name        string
		server      *tls.Config
		client      *tls.Config
		ok          bool
		serverSaysR bool // the server refuses (else the client does)
	}{
		{"client API: valid client", p.NodeMaterial.ServerConfig(tlsconf.Options{}), p.ClientMaterial.ClientConfig(tlsconf.Options{}), true, false},
		{"client API: revoked client", p.NodeMaterial.ServerConfig(tlsconf.Options{}), mallory.ClientConfig(tlsconf.Options{}), false, true},
		{"peer server: valid node", p.NodeMaterial.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, nil), n2.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil), true, false},
		{"peer server: revoked node", p.NodeMaterial.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, nil), revokedNode.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil), false, true},
		{"peer client: revoked server", revokedServer, n2Strict.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil), false, false},
		{"peer dial config: revoked server", revokedServer, dial, false, false},
		{"client: revoked server", revokedNode.ServerConfig(tlsconf.Options{}), n2Strict.ClientConfig(tlsconf.Options{}), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tlstest.Handshake(t, tt.server, tt.client)
			if tt.ok {
				if r.ServerErr != nil || r.ClientErr != nil {
					t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
				}
				return
			}
			err := r.ClientErr
			if tt.serverSaysR {
				err = r.ServerErr
			}
			if !errors.Is(err, tlsconf.ErrRevoked) {
				t.Fatalf("error %v, want ErrRevoked (server err %v, client err %v)", err, r.ServerErr, r.ClientErr)
			}
			if !strings.Contains(err.Error(), "serial ") || !strings.Contains(err.Error(), crlFile) {
				t.Errorf("error %q does not name the serial and the CRL file", err)
			}
		})
	}
}

func TestCRLFiles(t *testing.T) {
	p := tlstest.NewPKI(t)
	other := tlstest.NewCA(t)
	mallory := loadIssued(t, p, "mallory", tlstest.IssueClient(t, p.CA, "mallory"))
	serial := mallory.Certificate().Leaf.SerialNumber
	ours, err := p.CA.RevocationList(1, []*big.Int{serial}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := other.RevocationList(1, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(ours)

	tests := []struct {
		name    string
		data    []byte
		wantErr error // nil: loads and revokes mallory
	}{
		{"PEM", ours, nil},
		{"DER", block.Bytes, nil},
		{"expired CRL still applies", staleCRL(t, p.CA, serial), nil},
		{"PEM after another block", append([]byte("# revoked 2024\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), ours...), nil},
		{"garbage", []byte("not a CRL"), pki.ErrNoCRL},
		{"certificate, not a CRL", p.CA.CertPEM, pki.ErrNoCRL},
		{"another CA's CRL", theirs, tlsconf.ErrCRLIssuer},
		{"ours and another CA's", append(append([]byte{}, ours...), theirs...), tlsconf.ErrCRLIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := p.Node
			f.CRLFile = filepath.Join(t.TempDir(), "crl")
			tlstest.WriteFile(t, f.CRLFile, string(tt.data), 0o644)
			m, err := tlsconf.LoadMaterial(f)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "load CRL file "+f.CRLFile) {
					t.Fatalf("err = %v, want %v naming the file", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := tlstest.Handshake(t, m.ServerConfig(tlsconf.Options{}), mallory.ClientConfig(tlsconf.Options{}))
			if !errors.Is(r.ServerErr, tlsconf.ErrRevoked) {
				t.Fatalf("server err %v, want ErrRevoked", r.ServerErr)
			}
		})
	}
}

// A CRL whose NextUpdate has passed is applied, and the server warns once
// per generation of material.
func TestStaleCRLWarnsOnce(t *testing.T) {
	p := tlstest.NewPKI(t)
	f := p.Node
	f.CRLFile = filepath.Join(p.Dir, "stale.crl")
	tlstest.WritePEM(t, f.CRLFile, "X509 CRL", staleCRL(t, p.CA), 0o644)
	m, err := tlsconf.LoadMaterial(f)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newTestLogger()
	srv := m.ServerConfig(tlsconf.Options{Logger: log})
	for range 3 {
		if r := tlstest.Handshake(t, srv, p.ClientMaterial.ClientConfig(tlsconf.Options{})); r.ServerErr != nil {
			t.Fatal(r.ServerErr)
		}
	}
	if n := strings.Count(logs.String(), "CRL is past its next update"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
}

// An intermediate CA following the leaf in the certificate file counts as
// issued by the bundle's root; a serving certificate made by another CA
// loads (a public serving certificate with a private client CA) but is
// marked, so that a reload cannot silently switch to one.
func TestIssuedByBundle(t *testing.T) {
	p := tlstest.NewPKI(t)
	root := newCAWith(t, nil, "root", false)
	inter := newCAWith(t, root, "intermediate", true)
	rootFile := filepath.Join(p.Dir, "root.crt")
	tlstest.WriteFile(t, rootFile, string(root.CertPEM), 0o644)
	leaf, err := inter.IssueNode(tlstest.TrustDomain, "n1", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf.CertPEM = append(leaf.CertPEM, inter.CertPEM...)
	m, err := tlsconf.LoadMaterial(tlstest.WritePair(t, p.Dir, "via-intermediate", rootFile, leaf))
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsconf.NotIssued(m); err != nil {
		t.Errorf("leaf + intermediate counted as not issued by the root: %v", err)
	}
	foreign := loadIssued(t, p, "foreign", tlstest.IssueNode(t, tlstest.NewCA(t), tlstest.TrustDomain, "n1"))
	if err := tlsconf.NotIssued(foreign); !errors.Is(err, tlsconf.ErrNotIssuedByCA) {
		t.Errorf("notIssued = %v, want ErrNotIssuedByCA", err)
	}
}

// newCAWith makes a CA signed by parent (self-signed if nil), without the
// path length limit of NewCA so that it may sign an intermediate.
func newCAWith(t *testing.T, parent *pki.CA, cn string, pathLenZero bool) *pki.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial := tlstest.Serial()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: pathLenZero, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	signer, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pki.CA{Cert: c, Key: key, CertPEM: pki.EncodeCertPEM(der)}
}

// A resumed TLS session is checked against the CRL too: a client revoked
// after its first connection cannot resume its session.
func TestCRLResumedSession(t *testing.T) {
	p := tlstest.NewPKI(t)
	srv := p.NodeMaterial.ServerConfig(tlsconf.Options{})
	cli := p.ClientMaterial.ClientConfig(tlsconf.Options{})
	cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i, wantResume := range []bool{false, true} {
		r := tlstest.Handshake(t, srv, cli)
		if r.ServerErr != nil || r.ClientErr != nil {
			t.Fatalf("handshake %d: server err %v, client err %v", i, r.ServerErr, r.ClientErr)
		}
		if r.Server.DidResume != wantResume {
			t.Fatalf("handshake %d: resumed %v, want %v", i, r.Server.DidResume, wantResume)
		}
	}
	crl := filepath.Join(p.Dir, "ca.crl")
	writeCRL(t, p.CA, crl, 1, p.ClientMaterial.Certificate().Leaf.SerialNumber)
	if err := p.NodeMaterial.SetCRLFile(crl); err != nil {
		t.Fatal(err)
	}
	r := tlstest.Handshake(t, srv, cli)
	if !errors.Is(r.ServerErr, tlsconf.ErrRevoked) {
		t.Fatalf("resumption after revocation: server err %v (resumed %v), want ErrRevoked", r.ServerErr, r.Server.DidResume)
	}
}
