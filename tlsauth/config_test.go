package tlsauth

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHandshake(t *testing.T) {
	p := newTestPKI(t)
	other := newTestCA(t)
	pool := p.nodeMat.Pool()
	clientCert := *p.clientMat.Certificate()
	nodeCert := *p.nodeMat.Certificate()
	now := time.Now()

	serverOnlyEKU := signLeaf(t, p.ca, &x509.Certificate{
		Subject: pkix.Name{CommonName: "mallory"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	expired := signLeaf(t, p.ca, &x509.Certificate{
		Subject: pkix.Name{CommonName: "old"}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	foreignIss, err := other.IssueClient(testTD, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.X509KeyPair(foreignIss.CertPEM, foreignIss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	foreignNodeIss, err := other.IssueNode(testTD, "n1", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignNode := writeTestPair(t, p.dir, "foreign-node", p.caFile, foreignNodeIss)
	foreignNodeMat, err := LoadMaterial(foreignNode)
	if err != nil {
		t.Fatal(err)
	}

	tls12Client := p.clientMat.ClientConfig(Options{MinVersion: tls.VersionTLS12})
	tls12Client.MaxVersion = tls.VersionTLS12

	tests := []struct {
		name      string
		server    *tls.Config
		client    *tls.Config
		wantID    Identity // zero: the handshake must fail
		wantErr   string   // for a failure, in the server's error
		wantVer   uint16
		wantClErr string // for a failure, in the client's error
	}{
		{name: "valid client", server: p.nodeServer, client: p.clientMat.ClientConfig(Options{}), wantID: Identity{"alice", KindClient}, wantVer: tls.VersionTLS13},
		{name: "node as client", server: p.nodeServer, client: p.nodeMat.ClientConfig(Options{}), wantID: Identity{"n1", KindNode}, wantVer: tls.VersionTLS13},
		{name: "no client certificate", server: p.nodeServer, client: clientWith(pool), wantErr: "client didn't provide a certificate"},
		{name: "client certificate from another CA", server: p.nodeServer, client: clientWith(pool, foreign), wantErr: "unknown authority"},
		{name: "client certificate without clientAuth EKU", server: p.nodeServer, client: clientWith(pool, serverOnlyEKU), wantErr: "key usage"},
		{name: "expired client certificate", server: p.nodeServer, client: clientWith(pool, expired), wantErr: "expired"},
		{name: "TLS 1.2 client refused by default", server: p.nodeServer, client: tls12Client, wantErr: "unsupported versions"},
		{name: "TLS 1.2 client with MinVersion 1.2", server: p.nodeMat.ServerConfig(Options{MinVersion: tls.VersionTLS12}), client: tls12Client, wantID: Identity{"alice", KindClient}, wantVer: tls.VersionTLS12},
		{name: "unsupported MinVersion is TLS 1.3", server: p.nodeMat.ServerConfig(Options{MinVersion: tls.VersionTLS11}), client: tls12Client, wantErr: "unsupported versions"},
		{name: "server from another CA refused by client", server: foreignNodeMat.ServerConfig(Options{}), client: clientWith(pool, clientCert), wantClErr: "unknown authority"},
		{name: "server name not in certificate", server: p.nodeServer, client: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{nodeCert}, ServerName: "elsewhere.example"}, wantClErr: "not elsewhere.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, tt.server, tt.client)
			if tt.wantID == (Identity{}) {
				if r.serverErr == nil || r.clientErr == nil {
					t.Fatalf("handshake succeeded (server err %v, client err %v)", r.serverErr, r.clientErr)
				}
				if tt.wantErr != "" && !strings.Contains(r.serverErr.Error(), tt.wantErr) {
					t.Errorf("server error %q does not contain %q", r.serverErr, tt.wantErr)
				}
				if tt.wantClErr != "" && !strings.Contains(r.clientErr.Error(), tt.wantClErr) {
					t.Errorf("client error %q does not contain %q", r.clientErr, tt.wantClErr)
				}
				return
			}
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("server err %v, client err %v", r.serverErr, r.clientErr)
			}
			if r.server.Version != tt.wantVer {
				t.Errorf("version %s, want %s", tls.VersionName(r.server.Version), tls.VersionName(tt.wantVer))
			}
			if r.server.Version == tls.VersionTLS12 && !slices.Contains(tls12Suites, r.server.CipherSuite) {
				t.Errorf("TLS 1.2 suite %s is not ECDHE AEAD", tls.CipherSuiteName(r.server.CipherSuite))
			}
			id, err := PeerIdentity(r.server, testTD)
			if err != nil || id != tt.wantID {
				t.Errorf("server sees %v (%v), want %v", id, err, tt.wantID)
			}
			sid, err := PeerIdentity(r.client, testTD)
			if err != nil || sid != (Identity{"n1", KindNode}) {
				t.Errorf("client sees server %v (%v), want node/n1", sid, err)
			}
		})
	}
}

func TestServerConfigALPN(t *testing.T) {
	p := newTestPKI(t)
	for _, proto := range []string{"h2", "http/1.1"} {
		t.Run(proto, func(t *testing.T) {
			cli := p.clientMat.ClientConfig(Options{})
			cli.NextProtos = []string{proto}
			r := handshake(t, p.nodeServer, cli)
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("server err %v, client err %v", r.serverErr, r.clientErr)
			}
			if r.client.NegotiatedProtocol != proto {
				t.Errorf("negotiated %q, want %q", r.client.NegotiatedProtocol, proto)
			}
		})
	}
}

// TestOpenSSLStylePKI uses certificates shaped like those of a hand-made
// openssl PKI: RSA 2048 keys in PKCS#1 files, no URI SAN, identity by CN,
// no extended key usage on the client certificate.
func TestOpenSSLStylePKI(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	rsaKey := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := rsaKey()
	caTmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "Example Ops Root", Organization: []string{"Example"}}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caTmpl.SerialNumber, _ = newSerial()
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile, caKeyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	writePEM(t, caFile, "CERTIFICATE", caDER, 0o644)
	writePEM(t, caKeyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(caKey), 0o600)
	ca := &CA{Cert: caCert, Key: caKey}

	writeLeaf := func(name string, tmpl *x509.Certificate) Files {
		key := rsaKey()
		c := signLeafKey(t, ca, tmpl, key)
		f := Files{CAFile: caFile, CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+"-key.pem")}
		writePEM(t, f.CertFile, "CERTIFICATE", c.Certificate[0], 0o644)
		writePEM(t, f.KeyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600)
		return f
	}
	serverFiles := writeLeaf("server", &x509.Certificate{
		Subject: pkix.Name{CommonName: "peer1.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	clientFiles := writeLeaf("admin", &x509.Certificate{
		Subject: pkix.Name{CommonName: "admin"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
	})

	server, err := LoadMaterial(serverFiles)
	if err != nil {
		t.Fatalf("LoadMaterial server: %v", err)
	}
	for _, tt := range []struct {
		name   string
		files  Files
		want   Identity
		isNode bool
	}{
		{"CN client", clientFiles, Identity{"admin", KindCN}, false},
		{"CN peer", serverFiles, Identity{"peer1.example", KindCN}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := ClientConfigFromFiles(tt.files)
			if err != nil {
				t.Fatalf("ClientConfigFromFiles: %v", err)
			}
			r := handshake(t, server.ServerConfig(Options{}), cli)
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("server err %v, client err %v", r.serverErr, r.clientErr)
			}
			id, err := PeerIdentity(r.server, testTD)
			if err != nil || id != tt.want {
				t.Fatalf("identity %v (%v), want %v", id, err, tt.want)
			}
			if got := IsNode(id, []string{"peer1.example"}); got != tt.isNode {
				t.Errorf("IsNode = %v, want %v", got, tt.isNode)
			}
		})
	}

	// The operator's CA can issue Cairn certificates too.
	loaded, err := LoadCA(caFile, caKeyFile)
	if err != nil {
		t.Fatalf("LoadCA with an RSA PKCS#1 key: %v", err)
	}
	iss, err := loaded.IssueClient(testTD, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob := writeTestPair(t, dir, "bob", caFile, iss)
	cli, err := ClientConfigFromFiles(bob)
	if err != nil {
		t.Fatal(err)
	}
	r := handshake(t, server.ServerConfig(Options{}), cli)
	if id, err := PeerIdentity(r.server, testTD); r.serverErr != nil || err != nil || id != (Identity{"bob", KindClient}) {
		t.Errorf("Cairn client from operator CA: server err %v, identity %v (%v)", r.serverErr, id, err)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		in      string
		want    uint16
		wantErr bool
	}{
		{"", 0, false},
		{"1.3", tls.VersionTLS13, false},
		{"1.2", tls.VersionTLS12, false},
		{"TLS1.2", tls.VersionTLS12, false},
		{" tls 1.3 ", tls.VersionTLS13, false},
		{"1.1", 0, true},
		{"1.0", 0, true},
		{"ssl3", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMinVersion(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseMinVersion(%q) = %v, %v", tt.in, got, err)
			}
			if err == nil {
				if err := (Options{MinVersion: got}).Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			} else if !errors.Is(err, ErrTLSVersion) {
				t.Errorf("err = %v, want ErrTLSVersion", err)
			}
		})
	}
	if err := (Options{MinVersion: tls.VersionTLS11}).Validate(); !errors.Is(err, ErrTLSVersion) {
		t.Errorf("Validate TLS 1.1: %v", err)
	}
}

func TestClientConfigFromFilesErrors(t *testing.T) {
	p := newTestPKI(t)
	missing := filepath.Join(p.dir, "missing.crt")
	tests := []struct {
		name string
		f    Files
		want string
	}{
		{"no CA file", Files{CertFile: p.client.CertFile, KeyFile: p.client.KeyFile}, "no CA file"},
		{"missing CA file", Files{CAFile: missing, CertFile: p.client.CertFile, KeyFile: p.client.KeyFile}, "tlsauth: load CA file " + missing},
		{"key of another pair", Files{CAFile: p.caFile, CertFile: p.client.CertFile, KeyFile: p.node.KeyFile}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClientConfigFromFiles(tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("test setup: missing file exists")
	}
}

func TestExpiredServerCertificateWarnsOnce(t *testing.T) {
	p := newTestPKI(t)
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
	files := writeTestPair(t, p.dir, "old", p.caFile, Issued{CertPEM: encodeCertPEM(old.Certificate[0]), KeyPEM: keyPEM})
	m, err := LoadMaterial(files)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv := m.ServerConfig(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 2 {
		if r := handshake(t, srv, p.clientMat.ClientConfig(Options{})); r.clientErr == nil {
			t.Fatal("client accepted an expired server certificate")
		}
	}
	if n := strings.Count(logs.String(), "server certificate is not valid now"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
}
