package managed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// managedCert issues a serving certificate for node name through CAIssuer.
func managedCert(t *testing.T, ca *pki.CA, name string, notAfter time.Time) *tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		URIs:        spiffeURIs(name),
	}
	c := tlstest.Sign(t, ca, tmpl)
	return &c
}

func spiffeURIs(name string) []*url.URL {
	return []*url.URL{tlsauth.SPIFFEID(tlstest.TrustDomain, tlsauth.KindNode, name)}
}

func serverNode(t *testing.T, r tlstest.Result) string {
	t.Helper()
	if r.ClientErr != nil || r.ServerErr != nil {
		t.Fatalf("handshake: client %v, server %v", r.ClientErr, r.ServerErr)
	}
	id, err := tlsauth.IdentityFromCert(r.Client.PeerCertificates[0], tlstest.TrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	return id.Name
}

func TestManagedServerConfig(t *testing.T) {
	p := tlstest.NewPKI(t) // the material's certificate is node n1's
	fresh := managedCert(t, p.CA, "managed", time.Now().Add(time.Hour))
	expired := managedCert(t, p.CA, "expired", time.Now().Add(-time.Minute))
	alice := *p.ClientMaterial.Certificate()
	tests := []struct {
		name string
		get  func(*tls.ClientHelloInfo) (*tls.Certificate, error)
		want string
	}{
		{"managed certificate", func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return fresh, nil }, "managed"},
		{"none: the node's", func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &tls.Certificate{}, errors.New("no certificate")
		}, "n1"},
		{"expired: the node's", func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return expired, nil }, "n1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := ServerConfig(p.NodeMaterial, tlsconf.Options{}, tc.get)
			for range 2 { // the second handshake uses the cached configuration
				if got := serverNode(t, tlstest.Handshake(t, srv, tlstest.ClientConfig(p.NodeMaterial.Pool(), alice))); got != tc.want {
					t.Errorf("server certificate of %s, want %s", got, tc.want)
				}
			}
			if r := tlstest.Handshake(t, srv, tlstest.ClientConfig(p.NodeMaterial.Pool())); r.ServerErr == nil {
				t.Error("a client without a certificate was accepted")
			}
		})
	}
}

func TestManagerServesIssuedCertificates(t *testing.T) {
	p := tlstest.NewPKI(t)
	kv := newMemKV()
	storage := NewStorage(kv, StorageConfig{Owner: "n2"})
	t.Cleanup(func() { storage.Close() })
	m, err := NewManager(ManagerConfig{
		Storage: storage,
		Issuer:  &CAIssuer{CA: p.CA, TrustDomain: tlstest.TrustDomain, NodeName: "n2", Validity: time.Hour},
		Hosts:   []string{"LocalHost", "127.0.0.1", "localhost"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if got := m.Hosts(); strings.Join(got, ",") != "localhost,127.0.0.1" {
		t.Errorf("Hosts = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Obtain(ctx); err != nil {
		t.Fatal(err)
	}
	srv := ServerConfig(p.NodeMaterial, tlsconf.Options{}, m.GetCertificate)
	alice := *p.ClientMaterial.Certificate()
	for _, name := range []string{"localhost", "127.0.0.1"} { // SNI, and no SNI (local IP)
		cli := tlstest.ClientConfig(p.NodeMaterial.Pool(), alice)
		cli.ServerName = name
		r := tlstest.Handshake(t, srv, cli)
		if got := serverNode(t, r); got != "n2" {
			t.Errorf("%s: served node %s's certificate, want the managed one (n2)", name, got)
		}
		if lt := r.Client.PeerCertificates[0].NotAfter.Sub(r.Client.PeerCertificates[0].NotBefore); lt > 2*time.Hour {
			t.Errorf("%s: lifetime %v, want about an hour", name, lt)
		}
	}
	if _, err := storage.List(ctx, "certificates/"+(&CAIssuer{CA: p.CA, NodeName: "n2"}).IssuerKey(), false); err != nil {
		t.Errorf("certificates not in the storage: %v", err)
	}
	// A second member sharing the storage loads nothing of n2's.
	m3, err := NewManager(ManagerConfig{Storage: NewStorage(kv, StorageConfig{}),
		Issuer: &CAIssuer{CA: p.CA, TrustDomain: tlstest.TrustDomain, NodeName: "n3"}, Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m3.Stop)
	if err := m3.Obtain(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := m3.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := tlsauth.IdentityFromCert(c.Leaf, tlstest.TrustDomain); id.Name != "n3" {
		t.Errorf("n3 serves %v", id)
	}
}

func TestNewManagerErrors(t *testing.T) {
	ca := tlstest.NewCA(t)
	s := NewStorage(newMemKV(), StorageConfig{})
	iss := &CAIssuer{CA: ca, TrustDomain: tlstest.TrustDomain, NodeName: "n1"}
	tests := map[string]ManagerConfig{
		"no storage":          {Issuer: iss, Hosts: []string{"localhost"}},
		"nothing to manage":   {Storage: s},
		"hosts but no issuer": {Storage: s, Hosts: []string{"localhost"}},
		"bad host":            {Storage: s, Issuer: iss, Hosts: []string{"localhost:4001"}},
		"IP as ACME domain":   {Storage: s, ACME: ACMEConfig{Domains: []string{"192.0.2.1"}}},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			if m, err := NewManager(cfg); err == nil {
				m.Stop()
				t.Error("NewManager succeeded")
			}
		})
	}
	m, err := NewManager(ManagerConfig{Storage: s, Issuer: iss, Hosts: []string{"a.example", "localhost"},
		ACME: ACMEConfig{Domains: []string{"A.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if h, d := m.Hosts(), m.Domains(); len(h) != 1 || h[0] != "localhost" || len(d) != 1 || d[0] != "a.example" {
		t.Errorf("hosts %q, domains %q: an ACME domain must be left to ACME", h, d)
	}
	if m.configFor([]string{"a.example"}) != m.acmeCfg || m.configFor([]string{"localhost"}) != m.caCfg {
		t.Error("configFor picks the wrong configuration")
	}
}

func TestCertmagicLogger(t *testing.T) {
	var buf bytes.Buffer
	l := ZapLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Named("obtain").With(zap.String("identifier", "a.example")).Info("lock acquired", zap.Int("attempt", 2))
	l.Debug("hidden")
	got := buf.String()
	for _, want := range []string{`msg="certmagic: lock acquired"`, "logger=obtain", "identifier=a.example", "attempt=2"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Error("debug record written at info level")
	}
	ZapLogger(nil).Info("discarded")
}
