package tlsauth

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
func writeCRL(t *testing.T, ca *CA, path string, number int64, serials ...*big.Int) {
	t.Helper()
	crl, err := ca.RevocationList(number, serials, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, string(crl), 0o644)
}

// staleCRL is a DER CRL of ca whose NextUpdate has passed.
func staleCRL(t *testing.T, ca *CA, serials ...*big.Int) []byte {
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
	p := newTestPKI(t)
	mallory := loadIssued(t, p, "mallory", mustIssueClient(t, p.ca, "mallory"))
	n2 := loadIssued(t, p, "n2", mustIssueNode(t, p.ca, testTD, "n2"))
	revokedNode := loadIssued(t, p, "n3", mustIssueNode(t, p.ca, testTD, "n3"))
	crlFile := filepath.Join(p.dir, "ca.crl")
	writeCRL(t, p.ca, crlFile, 1, mallory.Certificate().Leaf.SerialNumber, revokedNode.Certificate().Leaf.SerialNumber)
	// The node's material with the CRL, as a server and as a client.
	if err := p.nodeMat.SetCRLFile(crlFile); err != nil {
		t.Fatalf("SetCRLFile: %v", err)
	}
	if got := p.nodeMat.Files().CRLFile; got != crlFile {
		t.Fatalf("Files().CRLFile = %q", got)
	}
	// A node whose own material revokes the server it dials.
	n2Strict := loadIssued(t, p, "n2strict", mustIssueNode(t, p.ca, testTD, "n2"))
	if err := n2Strict.SetCRLFile(crlFile); err != nil {
		t.Fatal(err)
	}
	revokedServer := revokedNode.PeerServerConfig(Options{}, testTD, nil)
	dial, _ := n2Strict.PeerDialConfig(Options{}, testTD, nil)()

	tests := []struct {
		name        string
		server      *tls.Config
		client      *tls.Config
		ok          bool
		serverSaysR bool // the server refuses (else the client does)
	}{
		{"client API: valid client", p.nodeMat.ServerConfig(Options{}), p.clientMat.ClientConfig(Options{}), true, false},
		{"client API: revoked client", p.nodeMat.ServerConfig(Options{}), mallory.ClientConfig(Options{}), false, true},
		{"peer server: valid node", p.nodeMat.PeerServerConfig(Options{}, testTD, nil), n2.PeerClientConfig(Options{}, testTD, nil), true, false},
		{"peer server: revoked node", p.nodeMat.PeerServerConfig(Options{}, testTD, nil), revokedNode.PeerClientConfig(Options{}, testTD, nil), false, true},
		{"peer client: revoked server", revokedServer, n2Strict.PeerClientConfig(Options{}, testTD, nil), false, false},
		{"peer dial config: revoked server", revokedServer, dial, false, false},
		{"client: revoked server", revokedNode.ServerConfig(Options{}), n2Strict.ClientConfig(Options{}), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, tt.server, tt.client)
			if tt.ok {
				if r.serverErr != nil || r.clientErr != nil {
					t.Fatalf("server err %v, client err %v", r.serverErr, r.clientErr)
				}
				return
			}
			err := r.clientErr
			if tt.serverSaysR {
				err = r.serverErr
			}
			if !errors.Is(err, ErrRevoked) {
				t.Fatalf("error %v, want ErrRevoked (server err %v, client err %v)", err, r.serverErr, r.clientErr)
			}
			if !strings.Contains(err.Error(), "serial ") || !strings.Contains(err.Error(), crlFile) {
				t.Errorf("error %q does not name the serial and the CRL file", err)
			}
		})
	}
}

func TestCRLFiles(t *testing.T) {
	p := newTestPKI(t)
	other := newTestCA(t)
	mallory := loadIssued(t, p, "mallory", mustIssueClient(t, p.ca, "mallory"))
	serial := mallory.Certificate().Leaf.SerialNumber
	ours, err := p.ca.RevocationList(1, []*big.Int{serial}, time.Hour)
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
		{"expired CRL still applies", staleCRL(t, p.ca, serial), nil},
		{"PEM after another block", append([]byte("# revoked 2024\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), ours...), nil},
		{"garbage", []byte("not a CRL"), ErrNoCRL},
		{"certificate, not a CRL", p.ca.CertPEM, ErrNoCRL},
		{"another CA's CRL", theirs, ErrCRLIssuer},
		{"ours and another CA's", append(append([]byte{}, ours...), theirs...), ErrCRLIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := p.node
			f.CRLFile = filepath.Join(t.TempDir(), "crl")
			mustWrite(t, f.CRLFile, string(tt.data), 0o644)
			m, err := LoadMaterial(f)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "load CRL file "+f.CRLFile) {
					t.Fatalf("err = %v, want %v naming the file", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := handshake(t, m.ServerConfig(Options{}), mallory.ClientConfig(Options{}))
			if !errors.Is(r.serverErr, ErrRevoked) {
				t.Fatalf("server err %v, want ErrRevoked", r.serverErr)
			}
		})
	}
}

// A CRL whose NextUpdate has passed is applied, and the server warns once
// per generation of material.
func TestStaleCRLWarnsOnce(t *testing.T) {
	p := newTestPKI(t)
	f := p.node
	f.CRLFile = filepath.Join(p.dir, "stale.crl")
	writePEM(t, f.CRLFile, "X509 CRL", staleCRL(t, p.ca), 0o644)
	m, err := LoadMaterial(f)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newTestLogger()
	srv := m.ServerConfig(Options{Logger: log})
	for range 3 {
		if r := handshake(t, srv, p.clientMat.ClientConfig(Options{})); r.serverErr != nil {
			t.Fatal(r.serverErr)
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
	p := newTestPKI(t)
	root := newCAWith(t, nil, "root", false)
	inter := newCAWith(t, root, "intermediate", true)
	rootFile := filepath.Join(p.dir, "root.crt")
	mustWrite(t, rootFile, string(root.CertPEM), 0o644)
	leaf, err := inter.IssueNode(testTD, "n1", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf.CertPEM = append(leaf.CertPEM, inter.CertPEM...)
	m, err := LoadMaterial(writeTestPair(t, p.dir, "via-intermediate", rootFile, leaf))
	if err != nil {
		t.Fatal(err)
	}
	if s := m.cur.Load(); s.notIssued != nil {
		t.Errorf("leaf + intermediate counted as not issued by the root: %v", s.notIssued)
	}
	foreign := loadIssued(t, p, "foreign", mustIssueNode(t, newTestCA(t), testTD, "n1"))
	if s := foreign.cur.Load(); !errors.Is(s.notIssued, ErrNotIssuedByCA) {
		t.Errorf("notIssued = %v, want ErrNotIssuedByCA", s.notIssued)
	}
}

// newCAWith makes a CA signed by parent (self-signed if nil), without the
// path length limit of NewCA so that it may sign an intermediate.
func newCAWith(t *testing.T, parent *CA, cn string, pathLenZero bool) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := newSerial()
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
	return &CA{Cert: c, Key: key, CertPEM: encodeCertPEM(der)}
}

func TestRevocationListErrors(t *testing.T) {
	ca := newTestCA(t)
	if _, err := ca.RevocationList(1, nil, 0); !errors.Is(err, ErrValidity) {
		t.Errorf("zero validity: %v, want ErrValidity", err)
	}
	if got := SerialHex(big.NewInt(0xabc)); got != "0ABC" {
		t.Errorf("SerialHex = %q, want 0ABC", got)
	}
}

// A resumed TLS session is checked against the CRL too: a client revoked
// after its first connection cannot resume its session.
func TestCRLResumedSession(t *testing.T) {
	p := newTestPKI(t)
	srv := p.nodeMat.ServerConfig(Options{})
	cli := p.clientMat.ClientConfig(Options{})
	cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i, wantResume := range []bool{false, true} {
		r := handshake(t, srv, cli)
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("handshake %d: server err %v, client err %v", i, r.serverErr, r.clientErr)
		}
		if r.server.DidResume != wantResume {
			t.Fatalf("handshake %d: resumed %v, want %v", i, r.server.DidResume, wantResume)
		}
	}
	crl := filepath.Join(p.dir, "ca.crl")
	writeCRL(t, p.ca, crl, 1, p.clientMat.Certificate().Leaf.SerialNumber)
	if err := p.nodeMat.SetCRLFile(crl); err != nil {
		t.Fatal(err)
	}
	r := handshake(t, srv, cli)
	if !errors.Is(r.serverErr, ErrRevoked) {
		t.Fatalf("resumption after revocation: server err %v (resumed %v), want ErrRevoked", r.serverErr, r.server.DidResume)
	}
}
