package tlstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

const TrustDomain = "cairn.internal"

func NewCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(TrustDomain, 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// writeTestPair writes iss as <dir>/<name>.crt and .key and returns Files
// trusting caFile.
func WritePair(t *testing.T, dir, name, caFile string, iss pki.Issued) tlsconf.Files {
	t.Helper()
	f := tlsconf.Files{CAFile: caFile, CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if err := pki.WritePair(iss, f.CertFile, f.KeyFile); err != nil {
		t.Fatalf("WritePair %s: %v", name, err)
	}
	return f
}

// testPKI is a CA on disk with a node and a client certificate.
type PKI struct {
	Dir            string
	CA             *pki.CA
	CAFile         string
	Node           tlsconf.Files
	Client         tlsconf.Files // client/alice
	NodeMaterial   *tlsconf.Material
	ClientMaterial *tlsconf.Material
	NodeServer     *tls.Config
}

func NewPKI(t *testing.T) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), CA: NewCA(t)}
	p.CAFile = filepath.Join(p.Dir, "ca.crt")
	if err := p.CA.WriteFiles(p.CAFile, filepath.Join(p.Dir, "ca.key")); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	node, err := p.CA.IssueNode(TrustDomain, "n1", []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatalf("IssueNode: %v", err)
	}
	p.Node = WritePair(t, p.Dir, "node", p.CAFile, node)
	client, err := p.CA.IssueClient(TrustDomain, "alice", time.Hour)
	if err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	p.Client = WritePair(t, p.Dir, "client", p.CAFile, client)
	if p.NodeMaterial, err = tlsconf.LoadMaterial(p.Node); err != nil {
		t.Fatalf("LoadMaterial node: %v", err)
	}
	if p.ClientMaterial, err = tlsconf.LoadMaterial(p.Client); err != nil {
		t.Fatalf("LoadMaterial client: %v", err)
	}
	p.NodeServer = p.NodeMaterial.ServerConfig(tlsconf.Options{})
	return p
}

// signLeaf signs tmpl with ca for a fresh P-256 key and returns the pair as
// a tls.Certificate.
func Sign(t *testing.T, ca *pki.CA, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return SignKey(t, ca, tmpl, key)
}

func SignKey(t *testing.T, ca *pki.CA, tmpl *x509.Certificate, key crypto.Signer) tls.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = Serial()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// clientWith returns a client configuration trusting pool and presenting
// certs (none if empty).
func ClientConfig(pool *x509.CertPool, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "localhost"}
}

func Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

type Result struct {
	ClientErr, ServerErr error
	Client, Server       tls.ConnectionState
}

// handshake connects cli to srv over a loopback TCP connection, then has the
// server write two bytes that the client reads: with TLS 1.3 a client only
// learns that the server refused its certificate when it reads.
func Handshake(t *testing.T, srv, cli *tls.Config) Result {
	t.Helper()
	if cli.ServerName == "" {
		cli = cli.Clone()
		cli.ServerName = "localhost"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(30 * time.Second) // a bound on a hang, not a wait

	type serverResult struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan serverResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- serverResult{err: err}
			return
		}
		c.SetDeadline(deadline)
		tc := tls.Server(c, srv)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		st := tc.ConnectionState()
		tc.Close()
		done <- serverResult{err: err, state: st}
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(deadline)
	tc := tls.Client(raw, cli)
	var r Result
	r.ClientErr = tc.Handshake()
	if r.ClientErr == nil {
		buf := make([]byte, 2)
		_, r.ClientErr = io.ReadFull(tc, buf)
	}
	r.Client = tc.ConnectionState()
	tc.Close()
	s := <-done
	r.ServerErr, r.Server = s.err, s.state
	return r
}

func WritePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is filtered by umask
		t.Fatal(err)
	}
}

func WriteFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func IssueNode(t *testing.T, ca *pki.CA, td, name string) pki.Issued {
	t.Helper()
	iss, err := ca.IssueNode(td, name, []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// peerLeaf is a template for a certificate usable on both sides of the peer
// port (serverAuth and clientAuth, localhost SANs), as an operator's PKI
// would make one; uri, if not empty, is its only URI SAN.
func PeerTemplate(cn, uri string) *x509.Certificate {
	now := time.Now()
	c := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			panic(err)
		}
		c.URIs = []*url.URL{u}
	}
	return c
}

func IssueClient(t *testing.T, ca *pki.CA, name string) pki.Issued {
	t.Helper()
	iss, err := ca.IssueClient(TrustDomain, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// testSerial returns a random positive serial number.
func Serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}
