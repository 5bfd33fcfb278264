package tlsauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const testTD = "cairn.internal"

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(testTD, 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// writeTestPair writes iss as <dir>/<name>.crt and .key and returns Files
// trusting caFile.
func writeTestPair(t *testing.T, dir, name, caFile string, iss Issued) Files {
	t.Helper()
	f := Files{CAFile: caFile, CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if err := WritePair(iss, f.CertFile, f.KeyFile); err != nil {
		t.Fatalf("WritePair %s: %v", name, err)
	}
	return f
}

// testPKI is a CA on disk with a node and a client certificate.
type testPKI struct {
	dir        string
	ca         *CA
	caFile     string
	node       Files
	client     Files // client/alice
	nodeMat    *Material
	clientMat  *Material
	nodeServer *tls.Config
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), ca: newTestCA(t)}
	p.caFile = filepath.Join(p.dir, "ca.crt")
	if err := p.ca.WriteFiles(p.caFile, filepath.Join(p.dir, "ca.key")); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	node, err := p.ca.IssueNode(testTD, "n1", []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatalf("IssueNode: %v", err)
	}
	p.node = writeTestPair(t, p.dir, "node", p.caFile, node)
	client, err := p.ca.IssueClient(testTD, "alice", time.Hour)
	if err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	p.client = writeTestPair(t, p.dir, "client", p.caFile, client)
	if p.nodeMat, err = LoadMaterial(p.node); err != nil {
		t.Fatalf("LoadMaterial node: %v", err)
	}
	if p.clientMat, err = LoadMaterial(p.client); err != nil {
		t.Fatalf("LoadMaterial client: %v", err)
	}
	p.nodeServer = p.nodeMat.ServerConfig(Options{})
	return p
}

// signLeaf signs tmpl with ca for a fresh P-256 key and returns the pair as
// a tls.Certificate.
func signLeaf(t *testing.T, ca *CA, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signLeafKey(t, ca, tmpl, key)
}

func signLeafKey(t *testing.T, ca *CA, tmpl *x509.Certificate, key crypto.Signer) tls.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber, _ = newSerial()
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
func clientWith(pool *x509.CertPool, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "localhost"}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

type hsResult struct {
	clientErr, serverErr error
	client, server       tls.ConnectionState
}

// handshake connects cli to srv over a loopback TCP connection, then has the
// server write two bytes that the client reads: with TLS 1.3 a client only
// learns that the server refused its certificate when it reads.
func handshake(t *testing.T, srv, cli *tls.Config) hsResult {
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
	var r hsResult
	r.clientErr = tc.Handshake()
	if r.clientErr == nil {
		buf := make([]byte, 2)
		_, r.clientErr = io.ReadFull(tc, buf)
	}
	r.client = tc.ConnectionState()
	tc.Close()
	s := <-done
	r.serverErr, r.server = s.err, s.state
	return r
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is filtered by umask
		t.Fatal(err)
	}
}
