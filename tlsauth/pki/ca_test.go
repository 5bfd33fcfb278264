package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestCARoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA(tlstest.TrustDomain, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ca.Cert.Subject.CommonName, "Cairn CA (cairn.internal)"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("IsCA=%v KeyUsage=%v", ca.Cert.IsCA, ca.Cert.KeyUsage)
	}
	if pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.Cert.PublicKey)
	}
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := ca.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	assertMode(t, certFile, 0o644)
	assertMode(t, keyFile, 0o600)
	assertNoTempFiles(t, dir)

	loaded, err := pki.LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !bytes.Equal(loaded.CertPEM, ca.CertPEM) || !pki.KeyMatches(ca.Cert.PublicKey, loaded.Key) {
		t.Fatal("loaded CA differs from the written one")
	}

	// A certificate issued by the loaded CA verifies against the original.
	iss, err := loaded.IssueNode(tlstest.TrustDomain, "n1", []string{"db.example", "10.0.0.1", "[::1]", "", "DB.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parseIssued(t, iss)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: tlstest.Pool(ca.Cert), DNSName: "db.example", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("verify node certificate: %v", err)
	}
	if leaf.Subject.CommonName != "n1" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cairn.internal/node/n1" {
		t.Errorf("CN %q URIs %v", leaf.Subject.CommonName, leaf.URIs)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("node EKU = %v", leaf.ExtKeyUsage)
	}
	if !slices.Equal(leaf.DNSNames, []string{"db.example"}) {
		t.Errorf("DNS SANs = %v, want [db.example] (deduplicated, lowercased)", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs = %v", leaf.IPAddresses)
	}
	if leaf.IsCA {
		t.Error("node certificate is a CA")
	}

	cl, err := loaded.IssueClient(tlstest.TrustDomain, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cleaf := parseIssued(t, cl)
	if !slices.Equal(cleaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cleaf.URIs[0].String() != "spiffe://cairn.internal/client/alice" || cleaf.Subject.CommonName != "alice" {
		t.Errorf("client EKU %v URIs %v CN %q", cleaf.ExtKeyUsage, cleaf.URIs, cleaf.Subject.CommonName)
	}
	if len(cleaf.DNSNames)+len(cleaf.IPAddresses) != 0 {
		t.Error("client certificate has host SANs")
	}
}

func TestIssueClampsToCAExpiry(t *testing.T) {
	ca, err := pki.NewCA(tlstest.TrustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueClient(tlstest.TrustDomain, "bob", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseIssued(t, iss).NotAfter; got.After(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v is after CA NotAfter %v", got, ca.Cert.NotAfter)
	}
}

func TestIssueErrors(t *testing.T) {
	ca := tlstest.NewCA(t)
	tests := []struct {
		name     string
		td, who  string
		hosts    []string
		validity time.Duration
		want     error
	}{
		{"uppercase trust domain", "Cairn.internal", "n1", nil, time.Hour, tlsauth.ErrInvalidTrustDomain},
		{"empty trust domain", "", "n1", nil, time.Hour, tlsauth.ErrInvalidTrustDomain},
		{"empty name", tlstest.TrustDomain, "", nil, time.Hour, tlsauth.ErrInvalidName},
		{"slash in name", tlstest.TrustDomain, "a/b", nil, time.Hour, tlsauth.ErrInvalidName},
		{"dot-dot name", tlstest.TrustDomain, "..", nil, time.Hour, tlsauth.ErrInvalidName},
		{"zero validity", tlstest.TrustDomain, "n1", nil, 0, pki.ErrValidity},
		{"host with port", tlstest.TrustDomain, "n1", []string{"example.com:4001"}, time.Hour, pki.ErrInvalidHost},
		{"host with space", tlstest.TrustDomain, "n1", []string{"exa mple.com"}, time.Hour, pki.ErrInvalidHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.IssueNode(tt.td, tt.who, tt.hosts, tt.validity)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := pki.NewCA("bad domain", time.Hour); !errors.Is(err, tlsauth.ErrInvalidTrustDomain) {
		t.Errorf("NewCA bad trust domain: %v", err)
	}
	if _, err := pki.NewCA(tlstest.TrustDomain, -time.Hour); !errors.Is(err, pki.ErrValidity) {
		t.Errorf("NewCA negative validity: %v", err)
	}
}

func TestLoadCAErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	caCert, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := ca.WriteFiles(caCert, caKey); err != nil {
		t.Fatal(err)
	}
	leaf := tlstest.WritePair(t, dir, "leaf", caCert, tlstest.IssueClient(t, ca, "alice"))
	other := tlstest.NewCA(t)
	otherCert, otherKey := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	if err := other.WriteFiles(otherCert, otherKey); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		cert, key     string
		want          error
		wantInMessage string
	}{
		{"not a CA", leaf.CertFile, leaf.KeyFile, pki.ErrNotCA, "tlsauth: load CA file " + leaf.CertFile},
		{"key of another CA", caCert, otherKey, pki.ErrKeyMismatch, "belong together"},
		{"missing cert", filepath.Join(dir, "nope.crt"), caKey, os.ErrNotExist, "tlsauth: load CA file"},
		{"key given as cert", caKey, caKey, pki.ErrNoCertificate, "BEGIN CERTIFICATE"},
		{"cert given as key", caCert, caCert, pki.ErrKeyFileMode, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pki.LoadCA(tt.cert, tt.key)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tt.wantInMessage)) {
				t.Errorf("error %q does not mention %q", err, tt.wantInMessage)
			}
		})
	}
}

func parseIssued(t *testing.T, iss pki.Issued) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(iss.CertPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("Issued.CertPEM is not a PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM(iss.KeyPEM)
	if err != nil {
		t.Fatalf("Issued.KeyPEM: %v", err)
	}
	if !pki.KeyMatches(c.PublicKey, key) {
		t.Fatal("Issued key does not match certificate")
	}
	return c
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s mode = %04o, want %04o", path, got, want)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(matches) > 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}
