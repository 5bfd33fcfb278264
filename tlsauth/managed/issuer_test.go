package managed

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func newCSR(t *testing.T, tmpl *x509.CertificateRequest) (*x509.CertificateRequest, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr, key
}

func parseIssuedPEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("want one PEM certificate, got %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCAIssuerIssue(t *testing.T) {
	ca := tlstest.NewCA(t) // valid 24 h
	tests := []struct {
		name     string
		validity time.Duration
		want     time.Duration // lifetime from now, within a minute
	}{
		{"default a week, clamped to the CA", 0, 24 * time.Hour},
		{"short", time.Hour, time.Hour},
		{"minutes", 2 * time.Minute, 2 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := &CAIssuer{CA: ca, TrustDomain: tlstest.TrustDomain, NodeName: "n1", Validity: tc.validity}
			csr, key := newCSR(t, &x509.CertificateRequest{
				DNSNames:    []string{"Node1.Example.COM", "localhost"},
				IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
			})
			out, err := iss.Issue(context.Background(), csr)
			if err != nil {
				t.Fatal(err)
			}
			c := parseIssuedPEM(t, out.Certificate)
			if !pki.KeyMatches(c.PublicKey, key) {
				t.Error("certificate is not for the CSR's key")
			}
			for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := c.Verify(x509.VerifyOptions{Roots: tlstest.Pool(ca.Cert), KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
					t.Errorf("verify for %v: %v", u, err)
				}
			}
			if err := c.VerifyHostname("node1.example.com"); err != nil {
				t.Error(err)
			}
			if err := c.VerifyHostname("::1"); err != nil {
				t.Error(err)
			}
			id, err := tlsauth.IdentityFromCert(c, tlstest.TrustDomain)
			if err != nil || id != (tlsauth.Identity{Kind: tlsauth.KindNode, Name: "n1"}) {
				t.Errorf("identity = %v, %v; want node n1", id, err)
			}
			// certmagic renews a certificate under its first subject, the CN.
			if c.Subject.CommonName != "node1.example.com" {
				t.Errorf("CN = %q, want the first requested name", c.Subject.CommonName)
			}
			if got := c.URIs[0].String(); got != "spiffe://cairn.internal/node/n1" {
				t.Errorf("URI SAN = %s", got)
			}
			if d := time.Until(c.NotAfter) - tc.want; d > time.Minute || d < -time.Minute {
				t.Errorf("NotAfter in %v, want %v", time.Until(c.NotAfter), tc.want)
			}
		})
	}
}

func TestCAIssuerRefuses(t *testing.T) {
	ca := tlstest.NewCA(t)
	iss := &CAIssuer{CA: ca, TrustDomain: tlstest.TrustDomain, NodeName: "n1"}
	tampered, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.example"}})
	tampered.Signature[len(tampered.Signature)-1] ^= 1
	emailCSR, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.example"}, EmailAddresses: []string{"x@example.com"}})
	uriCSR, _ := newCSR(t, &x509.CertificateRequest{URIs: []*url.URL{{Scheme: "spiffe", Host: tlstest.TrustDomain, Path: "/node/other"}}})
	badName, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"bad name.example"}})
	none, _ := newCSR(t, &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"x"}}})
	for name, csr := range map[string]*x509.CertificateRequest{
		"bad signature": tampered, "e-mail": emailCSR, "URI": uriCSR, "bad DNS name": badName, "no name": none,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := iss.Issue(context.Background(), csr); !errors.Is(err, ErrBadCSR) {
				t.Errorf("err = %v, want ErrBadCSR", err)
			}
		})
	}
	t.Run("bad node name", func(t *testing.T) {
		csr, _ := newCSR(t, &x509.CertificateRequest{DNSNames: []string{"a.example"}})
		bad := &CAIssuer{CA: ca, TrustDomain: tlstest.TrustDomain, NodeName: "a/b"}
		if _, err := bad.Issue(context.Background(), csr); !errors.Is(err, tlsauth.ErrInvalidName) {
			t.Errorf("err = %v, want ErrInvalidName", err)
		}
	})
}

func TestCAIssuerKey(t *testing.T) {
	ca1, ca2 := tlstest.NewCA(t), tlstest.NewCA(t)
	keys := []string{
		(&CAIssuer{CA: ca1, NodeName: "n1"}).IssuerKey(),
		(&CAIssuer{CA: ca1, NodeName: "n2"}).IssuerKey(),
		(&CAIssuer{CA: ca2, NodeName: "n1"}).IssuerKey(),
	}
	if keys[0] != (&CAIssuer{CA: ca1, NodeName: "n1", Validity: time.Hour}).IssuerKey() {
		t.Error("issuer key depends on validity")
	}
	if len(slices.Compact(slices.Sorted(slices.Values(keys)))) != len(keys) {
		t.Errorf("issuer keys not distinct per CA and node: %q", keys)
	}
}
