package pki_test

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestPKCS12RoundTrip(t *testing.T) {
	ca := tlstest.NewCA(t)
	iss := tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1")
	leaf := parseIssued(t, iss)
	for _, password := range []string{"", "correct horse battery staple", "pässwort"} {
		data, err := iss.PKCS12([]*x509.Certificate{ca.Cert}, password)
		if err != nil {
			t.Fatalf("PKCS12(%q): %v", password, err)
		}
		key, gotLeaf, chain, err := pki.DecodePKCS12(data, password)
		if err != nil {
			t.Fatalf("DecodePKCS12(%q): %v", password, err)
		}
		if !gotLeaf.Equal(leaf) || len(chain) != 1 || !chain[0].Equal(ca.Cert) || !pki.KeyMatches(leaf.PublicKey, key) {
			t.Errorf("password %q: the bundle does not hold the issued pair and the CA", password)
		}
		// The library's own decoder agrees.
		if _, c, _, err := pkcs12.DecodeChain(data, password); err != nil || !c.Equal(leaf) {
			t.Errorf("pkcs12.DecodeChain(%q): %v", password, err)
		}
		if _, _, _, err := pki.DecodePKCS12(data, password+"x"); !errors.Is(err, pki.ErrP12Password) {
			t.Errorf("wrong password: %v, want ErrP12Password", err)
		}
	}
}

func TestPKCS12Errors(t *testing.T) {
	ca := tlstest.NewCA(t)
	a, b := tlstest.IssueClient(t, ca, "a"), tlstest.IssueClient(t, ca, "b")
	if _, err := (pki.Issued{CertPEM: a.CertPEM, KeyPEM: b.KeyPEM}).PKCS12(nil, ""); !errors.Is(err, pki.ErrKeyMismatch) {
		t.Errorf("mismatched pair: %v, want ErrKeyMismatch", err)
	}
	if _, err := (pki.Issued{KeyPEM: a.KeyPEM}).PKCS12(nil, ""); !errors.Is(err, pki.ErrNoCertificate) {
		t.Errorf("no certificate: %v, want ErrNoCertificate", err)
	}
	if _, _, _, err := pki.DecodePKCS12([]byte("garbage"), ""); err == nil || errors.Is(err, pki.ErrP12Password) {
		t.Errorf("garbage: %v", err)
	}
	if _, _, _, err := pki.DecodePKCS12(make([]byte, pki.MaxFileSize+1), ""); !errors.Is(err, pki.ErrFileTooLarge) {
		t.Errorf("huge: %v, want ErrFileTooLarge", err)
	}
}

func TestWritePKCS12Mode(t *testing.T) {
	ca, err := pki.NewCA(tlstest.TrustDomain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tlstest.IssueClient(t, ca, "a").PKCS12([]*x509.Certificate{ca.Cert}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "a.p12")
	if err := pki.WritePKCS12(p, data); err != nil {
		t.Fatal(err)
	}
	assertMode(t, p, 0o600)
	assertNoTempFiles(t, dir)
	cf, err := pki.ReadCertificates(p, "pw")
	if err != nil || cf.Format != "PKCS#12" || !cf.HasKey || len(cf.Certs) != 2 {
		t.Fatalf("ReadCertificates: %+v, %v", cf, err)
	}
}
