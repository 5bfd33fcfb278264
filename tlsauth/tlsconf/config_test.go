package tlsconf_test

import (
	"bytes"
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

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestHandshake(t *testing.T) {
	p := tlstest.NewPKI(t)
	other := tlstest.NewCA(t)
	pool := p.NodeMaterial.Pool()
	clientCert := *p.ClientMaterial.Certificate()
	nodeCert := *p.NodeMaterial.Certificate()
	now := time.Now()

	serverOnlyEKU := tlstest.Sign(t, p.CA, &x509.Certificate{
		Subject: pkix.Name{CommonName: "mallory"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	expired := tlstest.Sign(t, p.CA, &x509.Certificate{
		Subject: pkix.Name{CommonName: "old"}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	foreignIss, err := other.IssueClient(tlstest.TrustDomain, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.X509KeyPair(foreignIss.CertPEM, foreignIss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	foreignNodeIss, err := other.IssueNode(tlstest.TrustDomain, "n1", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignNode := tlstest.WritePair(t, p.Dir, "foreign-node", p.CAFile, foreignNodeIss)
	foreignNodeMat, err := tlsconf.LoadMaterial(foreignNode)
	if err != nil {
		t.Fatal(err)
	}

	tls12Client := p.ClientMaterial.ClientConfig(tlsconf.Options{MinVersion: tls.VersionTLS12})
	tls12Client.MaxVersion = tls.VersionTLS12

	tests := []struct {
		name      string
		server    *tls.Config
		client    *tls.Config
		wantID    tlsauth.Identity // zero: the handshake must fail
		wantErr   string           // for a failure, in the server's error
		wantVer   uint16
		wantClErr string // for a failure, in the client's error
	}{
		{name: "valid client", server: p.NodeServer, client: p.ClientMaterial.ClientConfig(tlsconf.Options{}), wantID: tlsauth.Identity{Name: "alice", Kind: tlsauth.KindClient}, wantVer: tls.VersionTLS13},
		{name: "node as client", server: p.NodeServer, client: p.NodeMaterial.ClientConfig(tlsconf.Options{}), wantID: tlsauth.Identity{Name: "n1", Kind: tlsauth.KindNode}, wantVer: tls.VersionTLS13},
		{name: "no client certificate", server: p.NodeServer, client: tlstest.ClientConfig(pool), wantErr: "client didn't provide a certificate"},
		{name: "client certificate from another CA", server: p.NodeServer, client: tlstest.ClientConfig(pool, foreign), wantErr: "unknown authority"},
		{name: "client certificate without clientAuth EKU", server: p.NodeServer, client: tlstest.ClientConfig(pool, serverOnlyEKU), wantErr: "key usage"},
		{name: "expired client certificate", server: p.NodeServer, client: tlstest.ClientConfig(pool, expired), wantErr: "expired"},
		{name: "TLS 1.2 client refused by default", server: p.NodeServer, client: tls12Client, wantErr: "unsupported versions"},
		{name: "TLS 1.2 client with MinVersion 1.2", server: p.NodeMaterial.ServerConfig(tlsconf.Options{MinVersion: tls.VersionTLS12}), client: tls12Client, wantID: tlsauth.Identity{Name: "alice", Kind: tlsauth.KindClient}, wantVer: tls.VersionTLS12},
		{name: "unsupported MinVersion is TLS 1.3", server: p.NodeMaterial.ServerConfig(tlsconf.Options{MinVersion: tls.VersionTLS11}), client: tls12Client, wantErr: "unsupported versions"},
		{name: "server from another CA refused by client", server: foreignNodeMat.ServerConfig(tlsconf.Options{}), client: tlstest.ClientConfig(pool, clientCert), wantClErr: "unknown authority"},
		{name: "server name not in certificate", server: p.NodeServer, client: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{nodeCert}, ServerName: "elsewhere.example"}, wantClErr: "not elsewhere.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tlstest.Handshake(t, tt.server, tt.client)
			if tt.wantID == (tlsauth.Identity{}) {
				if r.ServerErr == nil || r.ClientErr == nil {
					t.Fatalf("handshake succeeded (server err %v, client err %v)", r.ServerErr, r.ClientErr)
				}
				if tt.wantErr != "" && !strings.Contains(r.ServerErr.Error(), tt.wantErr) {
					t.Errorf("server error %q does not contain %q", r.ServerErr, tt.wantErr)
				}
				if tt.wantClErr != "" && !strings.Contains(r.ClientErr.Error(), tt.wantClErr) {
					t.Errorf("client error %q does not contain %q", r.ClientErr, tt.wantClErr)
				}
				return
			}
			if r.ServerErr != nil || r.ClientErr != nil {
				t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
			}
			if r.Server.Version != tt.wantVer {
				t.Errorf("version %s, want %s", tls.VersionName(r.Server.Version), tls.VersionName(tt.wantVer))
			}
			if r.Server.Version == tls.VersionTLS12 && !slices.Contains(tlsconf.TLS12Suites, r.Server.CipherSuite) {
				t.Errorf("TLS 1.2 suite %s is not ECDHE AEAD", tls.CipherSuiteName(r.Server.CipherSuite))
			}
			id, err := tlsauth.PeerIdentity(r.Server, tlstest.TrustDomain)
			if err != nil || id != tt.wantID {
				t.Errorf("server sees %v (%v), want %v", id, err, tt.wantID)
			}
			sid, err := tlsauth.PeerIdentity(r.Client, tlstest.TrustDomain)
			if err != nil || sid != (tlsauth.Identity{Name: "n1", Kind: tlsauth.KindNode}) {
				t.Errorf("client sees server %v (%v), want node/n1", sid, err)
			}
		})
	}
}

func TestServerConfigALPN(t *testing.T) {
	p := tlstest.NewPKI(t)
	for _, proto := range []string{"h2", "http/1.1"} {
		t.Run(proto, func(t *testing.T) {
			cli := p.ClientMaterial.ClientConfig(tlsconf.Options{})
			cli.NextProtos = []string{proto}
			r := tlstest.Handshake(t, p.NodeServer, cli)
			if r.ServerErr != nil || r.ClientErr != nil {
				t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
			}
			if r.Client.NegotiatedProtocol != proto {
				t.Errorf("negotiated %q, want %q", r.Client.NegotiatedProtocol, proto)
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
	caTmpl.SerialNumber = tlstest.Serial()
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile, caKeyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	tlstest.WritePEM(t, caFile, "CERTIFICATE", caDER, 0o644)
	tlstest.WritePEM(t, caKeyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(caKey), 0o600)
	ca := &pki.CA{Cert: caCert, Key: caKey}

	writeLeaf := func(name string, tmpl *x509.Certificate) tlsconf.Files {
		key := rsaKey()
		c := tlstest.SignKey(t, ca, tmpl, key)
		f := tlsconf.Files{CAFile: caFile, CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+"-key.pem")}
		tlstest.WritePEM(t, f.CertFile, "CERTIFICATE", c.Certificate[0], 0o644)
		tlstest.WritePEM(t, f.KeyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600)
		return f
	}
	serverFiles := writeLeaf("server", &x509.Certificate{
		Subject: pkix.Name{CommonName: "peer1.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	clientFiles := writeLeaf("admin", &x509.Certificate{
		Subject: pkix.Name{CommonName: "admin"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})

	server, err := tlsconf.LoadMaterial(serverFiles)
	if err != nil {
		t.Fatalf("LoadMaterial server: %v", err)
	}
	for _, tt := range []struct {
		name   string
		files  tlsconf.Files
		want   tlsauth.Identity
		isNode bool
	}{
		{"CN client", clientFiles, tlsauth.Identity{Name: "admin", Kind: tlsauth.KindCN}, false},
		{"CN peer", serverFiles, tlsauth.Identity{Name: "peer1.example", Kind: tlsauth.KindCN}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, err := tlsconf.ClientConfigFromFiles(tt.files)
			if err != nil {
				t.Fatalf("ClientConfigFromFiles: %v", err)
			}
			r := tlstest.Handshake(t, server.ServerConfig(tlsconf.Options{}), cli)
			if r.ServerErr != nil || r.ClientErr != nil {
				t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
			}
			id, err := tlsauth.PeerIdentity(r.Server, tlstest.TrustDomain)
			if err != nil || id != tt.want {
				t.Fatalf("identity %v (%v), want %v", id, err, tt.want)
			}
			if got := tlsauth.IsNode(id, []string{"peer1.example"}); got != tt.isNode {
				t.Errorf("IsNode = %v, want %v", got, tt.isNode)
			}
		})
	}

	// The operator's CA can issue Cairn certificates too.
	loaded, err := pki.LoadCA(caFile, caKeyFile)
	if err != nil {
		t.Fatalf("LoadCA with an RSA PKCS#1 key: %v", err)
	}
	iss, err := loaded.IssueClient(tlstest.TrustDomain, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob := tlstest.WritePair(t, dir, "bob", caFile, iss)
	cli, err := tlsconf.ClientConfigFromFiles(bob)
	if err != nil {
		t.Fatal(err)
	}
	r := tlstest.Handshake(t, server.ServerConfig(tlsconf.Options{}), cli)
	if id, err := tlsauth.PeerIdentity(r.Server, tlstest.TrustDomain); r.ServerErr != nil || err != nil || id != (tlsauth.Identity{Name: "bob", Kind: tlsauth.KindClient}) {
		t.Errorf("Cairn client from operator CA: server err %v, identity %v (%v)", r.ServerErr, id, err)
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
			got, err := tlsconf.ParseMinVersion(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseMinVersion(%q) = %v, %v", tt.in, got, err)
			}
			if err == nil {
				if err := (tlsconf.Options{MinVersion: got}).Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			} else if !errors.Is(err, tlsconf.ErrTLSVersion) {
				t.Errorf("err = %v, want ErrTLSVersion", err)
			}
		})
	}
	if err := (tlsconf.Options{MinVersion: tls.VersionTLS11}).Validate(); !errors.Is(err, tlsconf.ErrTLSVersion) {
		t.Errorf("Validate TLS 1.1: %v", err)
	}
}

func TestClientConfigFromFilesErrors(t *testing.T) {
	p := tlstest.NewPKI(t)
	missing := filepath.Join(p.Dir, "missing.crt")
	tests := []struct {
		name string
		f    tlsconf.Files
		want string
	}{
		{"no CA file", tlsconf.Files{CertFile: p.Client.CertFile, KeyFile: p.Client.KeyFile}, "no CA file"},
		{"missing CA file", tlsconf.Files{CAFile: missing, CertFile: p.Client.CertFile, KeyFile: p.Client.KeyFile}, "tlsauth: load CA file " + missing},
		{"key of another pair", tlsconf.Files{CAFile: p.CAFile, CertFile: p.Client.CertFile, KeyFile: p.Node.KeyFile}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsconf.ClientConfigFromFiles(tt.f)
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
	p := tlstest.NewPKI(t)
	now := time.Now()
	old := tlstest.Sign(t, p.CA, &x509.Certificate{
		Subject: pkix.Name{CommonName: "n1"}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour),
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	files := tlstest.WritePair(t, p.Dir, "old", p.CAFile, tlstest.Issued(t, old))
	m, err := tlsconf.LoadMaterial(files)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv := m.ServerConfig(tlsconf.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 2 {
		if r := tlstest.Handshake(t, srv, p.ClientMaterial.ClientConfig(tlsconf.Options{})); r.ClientErr == nil {
			t.Fatal("client accepted an expired server certificate")
		}
	}
	if n := strings.Count(logs.String(), "server certificate is not valid now"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
}
