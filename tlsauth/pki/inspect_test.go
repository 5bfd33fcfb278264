package pki_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestCATrustDomain(t *testing.T) {
	ca, err := pki.NewCA("prod.example", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if td, ok := pki.CATrustDomain(ca.Cert); !ok || td != "prod.example" {
		t.Errorf("NewCA's certificate: %q %v, want prod.example", td, ok)
	}
	notCA := *ca.Cert
	notCA.IsCA = false
	for name, c := range map[string]*x509.Certificate{
		"nil":             nil,
		"not a CA":        &notCA,
		"other CN":        {IsCA: true, Subject: pkix.Name{CommonName: "Example Root CA"}},
		"bad domain":      {IsCA: true, Subject: pkix.Name{CommonName: "Cairn CA (Not Valid)"}},
		"unterminated":    {IsCA: true, Subject: pkix.Name{CommonName: "Cairn CA (x.example"}},
		"empty in parens": {IsCA: true, Subject: pkix.Name{CommonName: "Cairn CA ()"}},
	} {
		if td, ok := pki.CATrustDomain(c); ok {
			t.Errorf("%s: %q, want none", name, td)
		}
	}
}

func TestReadCertificates(t *testing.T) {
	ca := tlstest.NewCA(t)
	iss := tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1")
	leaf := parseIssued(t, iss)
	p12, err := iss.PKCS12([]*x509.Certificate{ca.Cert}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		path     string
		password string
		format   string
		certs    int
		hasKey   bool
		err      error
	}{
		{"PEM", write("n1.crt", iss.CertPEM), "", "PEM", 1, false, nil},
		{"PEM bundle with key", write("all.pem", slices.Concat(iss.KeyPEM, iss.CertPEM, ca.CertPEM)), "", "PEM", 2, true, nil},
		{"DER", write("n1.der", leaf.Raw), "", "DER", 1, false, nil},
		{"PKCS#12", write("n1.p12", p12), "pw", "PKCS#12", 2, true, nil},
		{"PKCS#12, wrong password", filepath.Join(dir, "n1.p12"), "", "", 0, false, pki.ErrP12Password},
		{"PEM key only", write("n1.key", iss.KeyPEM), "", "", 0, false, pki.ErrNoCertificate},
		{"garbage", write("garbage", []byte("hello")), "", "", 0, false, pki.ErrUnknownCertFormat},
		{"too large", write("huge", bytes.Repeat([]byte{'x'}, pki.MaxFileSize+1)), "", "", 0, false, pki.ErrFileTooLarge},
		{"missing", filepath.Join(dir, "nope"), "", "", 0, false, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf, err := pki.ReadCertificates(tt.path, tt.password)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.path) {
					t.Fatalf("err %v, want %v naming the file", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cf.Path != tt.path || cf.Format != tt.format || len(cf.Certs) != tt.certs || cf.HasKey != tt.hasKey || !cf.Certs[0].Equal(leaf) {
				t.Errorf("got %s %s %d certs key=%v", cf.Path, cf.Format, len(cf.Certs), cf.HasKey)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	ca := tlstest.NewCA(t)
	other, err := pki.NewCA("other.example", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	node := parseIssued(t, tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1"))
	client := parseIssued(t, tlstest.IssueClient(t, ca, "alice"))
	foreign, err := other.IssueClient("other.example", "mallory", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mallory := parseIssued(t, foreign)
	now := time.Now()
	cn := tlstest.Sign(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "etcd-1"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).Leaf
	bare := tlstest.Sign(t, ca, &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}).Leaf

	tests := []struct {
		name     string
		leaf     *x509.Certificate
		opts     pki.InspectOptions
		role     string
		td       string
		id       string
		problems []string // substrings, in order
		warnings []string // substrings, in order
	}{
		{"node", node, pki.InspectOptions{Roots: []*x509.Certificate{ca.Cert}}, pki.RoleNode, tlstest.TrustDomain, "node/n1", nil, []string{"expires in"}},
		{"client, no chain check", client, pki.InspectOptions{}, pki.RoleClient, tlstest.TrustDomain, "client/alice", nil, []string{"expires in"}},
		{"expired", client, pki.InspectOptions{Roots: []*x509.Certificate{ca.Cert}, Now: now.Add(2 * time.Hour)}, pki.RoleClient, tlstest.TrustDomain, "client/alice",
			[]string{"expired 1h", "chain check failed: x509: certificate has expired"}, nil},
		{"not yet valid", client, pki.InspectOptions{Now: now.Add(-time.Hour)}, pki.RoleClient, tlstest.TrustDomain, "client/alice", []string{"not yet valid"}, nil},
		{"another CA", mallory, pki.InspectOptions{Roots: []*x509.Certificate{ca.Cert}, TrustDomain: "other.example"}, pki.RoleClient, "other.example", "client/mallory",
			[]string{"chain check failed: x509: certificate signed by unknown authority"}, []string{"expires in"}},
		{"trust domain from the roots", mallory, pki.InspectOptions{Roots: []*x509.Certificate{ca.Cert, other.Cert}}, pki.RoleClient, "other.example", "client/mallory", nil, []string{"expires in"}},
		{"foreign trust domain", mallory, pki.InspectOptions{}, pki.RoleUnknown, tlstest.TrustDomain, "", []string{"no usable identity: certificate belongs to another trust domain"}, []string{"expires in"}},
		{"CN only, no clientAuth", cn, pki.InspectOptions{}, pki.RoleUnknown, tlstest.TrustDomain, "etcd-1", nil, []string{"no clientAuth", "expires in"}},
		{"no identity", bare, pki.InspectOptions{}, pki.RoleUnknown, tlstest.TrustDomain, "", []string{"no usable identity"}, []string{"expires in"}},
		{"the CA", ca.Cert, pki.InspectOptions{Roots: []*x509.Certificate{ca.Cert}}, pki.RoleUnknown, tlstest.TrustDomain, "Cairn CA (cairn.internal)", nil, []string{"this is a CA certificate", "expires in"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pki.Inspect(pki.CertFile{Path: "x.crt", Format: "PEM", Certs: []*x509.Certificate{tt.leaf}}, tt.opts)
			if r.Role != tt.role || r.TrustDomain != tt.td {
				t.Errorf("role %q trust domain %q, want %q %q", r.Role, r.TrustDomain, tt.role, tt.td)
			}
			if tt.id != "" && (r.IdentityErr != nil || r.Identity.String() != tt.id) {
				t.Errorf("identity %v (%v), want %s", r.Identity, r.IdentityErr, tt.id)
			}
			matchAll(t, "problems", r.Problems(), tt.problems)
			matchAll(t, "warnings", r.Warnings, tt.warnings)
			if r.ChainChecked != (len(tt.opts.Roots) > 0) {
				t.Errorf("ChainChecked %v", r.ChainChecked)
			}
			var out bytes.Buffer
			if err := r.Write(&out); err != nil {
				t.Fatal(err)
			}
			for _, label := range []string{"file:", "identity:", "role:", "trust domain:", "subject:", "issuer:", "serial:", "dns names:", "ip addresses:", "uris:",
				"public key:", "key usage:", "ext key usage:", "not before:", "not after:", "validity:", "chain:"} {
				if !strings.Contains(out.String(), "\n"+label) && !strings.HasPrefix(out.String(), label) {
					t.Errorf("no %q line in:\n%s", label, out.String())
				}
			}
		})
	}
}

func matchAll(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s %q, want %d matching %q", what, got, len(want), want)
		return
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("%s[%d] = %q, want it to contain %q", what, i, got[i], want[i])
		}
	}
}

func TestColonHex(t *testing.T) {
	for in, want := range map[string]string{"": "00", "\x01": "01", "\x0a\xff\x00": "0a:ff:00"} {
		if got := pki.ColonHex([]byte(in)); got != want {
			t.Errorf("colonHex(%x) = %q, want %q", in, got, want)
		}
	}
}

func TestInspectFile(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	iss, err := ca.IssueClient(tlstest.TrustDomain, "alice", 90*pki.Day)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile := filepath.Join(dir, "alice.crt"), filepath.Join(dir, "alice.key"), filepath.Join(dir, "ca.crt")
	if err := pki.WritePair(iss, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pki.EncodeCertPEM(ca.Cert.Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := pki.InspectFile(certFile, "", caFile, pki.InspectOptions{})
	if err != nil || len(r.Problems()) != 0 || len(r.Chain) == 0 {
		t.Fatalf("report %+v, %v", r, err)
	}
	if _, err := pki.InspectFile(certFile, filepath.Join(dir, "missing.pass"), "", pki.InspectOptions{}); err == nil || !strings.Contains(err.Error(), "password file") {
		t.Errorf("missing password file: %v", err)
	}
	if _, err := pki.InspectFile(certFile, "", filepath.Join(dir, "missing.crt"), pki.InspectOptions{}); err == nil {
		t.Error("missing CA file: no error")
	}
}
