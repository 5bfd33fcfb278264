package pki_test

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// caDir makes a CA directory with pki.InitCA and returns it.
func caDir(t *testing.T, td string, validity time.Duration) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := pki.InitCA(dir, td, validity); err != nil {
		t.Fatal(err)
	}
	return dir
}

// issueIn issues a certificate from the CA of dir into dir.
func issueIn(t *testing.T, dir string, kind tlsauth.Kind, name string, hosts ...string) *pki.IssueResult {
	t.Helper()
	r, err := pki.Issue(pki.IssueRequest{CADir: dir, Kind: kind, Name: name, Hosts: hosts, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenew(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name   string
		td     string // of the CA; default cairn.internal
		caVal  time.Duration
		kind   tlsauth.Kind
		hosts  []string
		valid  time.Duration
		noKey  bool          // the key file is missing
		want   time.Duration // lifetime of the new certificate
		output []string
	}{
		{name: "node", kind: tlsauth.KindNode, hosts: []string{"10.0.0.1", "::1", "n1.example.net"}, valid: 90 * day, want: 90 * day,
			output: []string{"Renewed node certificate node/n1 (spiffe://cairn.internal/node/n1)", "(90 days)", "ip addresses:", "10.0.0.1, ::1", "n1.example.net", "serverAuth, clientAuth", "new private key, mode 0600", "cairn cert revoke --ca-dir "}},
		{name: "client", kind: tlsauth.KindClient, valid: 30 * day, want: 30 * day,
			output: []string{"Renewed client certificate client/n1 (spiffe://cairn.internal/client/n1)", "usage:", "clientAuth", "(was "}},
		{name: "other trust domain", td: "prod.example", kind: tlsauth.KindClient, valid: time.Hour, want: time.Hour,
			output: []string{"spiffe://prod.example/client/n1"}},
		{name: "not beyond the CA", caVal: 10 * day, kind: tlsauth.KindClient, valid: 365 * day, want: 10 * day},
		{name: "missing key file", kind: tlsauth.KindNode, hosts: []string{"localhost"}, valid: day, noKey: true, want: day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := caDir(t, cmp.Or(tt.td, tlstest.TrustDomain), cmp.Or(tt.caVal, 10*365*day))
			old := issueIn(t, dir, tt.kind, "n1", tt.hosts...)
			oldKey, _ := os.ReadFile(old.KeyFile)
			if tt.noKey {
				os.Remove(old.KeyFile)
			}
			r, err := pki.Renew(pki.RenewRequest{CADir: dir, CertFile: old.CertFile, KeyFile: old.KeyFile, Validity: tt.valid})
			if err != nil {
				t.Fatal(err)
			}
			assertMode(t, old.KeyFile, 0o600)
			assertMode(t, old.CertFile, 0o644)
			assertNoTempFiles(t, dir)
			if newKey, _ := os.ReadFile(old.KeyFile); bytes.Equal(newKey, oldKey) {
				t.Error("the key was not replaced")
			}
			m, err := pki.LoadCA(pki.CAFiles(dir))
			if err != nil {
				t.Fatal(err)
			}
			c := readLeaf(t, old.CertFile)
			if !c.Equal(r.Cert) || c.SerialNumber.Cmp(old.Cert.SerialNumber) == 0 {
				t.Errorf("serial %s, old %s: want a new certificate on disk", pki.SerialHex(c.SerialNumber), pki.SerialHex(old.Cert.SerialNumber))
			}
			td := cmp.Or(tt.td, tlstest.TrustDomain)
			if id, err := tlsauth.IdentityFromCert(c, td); err != nil || id != (tlsauth.Identity{Name: "n1", Kind: tt.kind}) {
				t.Errorf("identity %v (%v)", id, err)
			}
			if !slices.EqualFunc(c.IPAddresses, old.Cert.IPAddresses, net.IP.Equal) || !slices.Equal(c.DNSNames, old.Cert.DNSNames) {
				t.Errorf("SANs %v %v, want %v %v", c.IPAddresses, c.DNSNames, old.Cert.IPAddresses, old.Cert.DNSNames)
			}
			if !slices.Equal(c.ExtKeyUsage, old.Cert.ExtKeyUsage) {
				t.Errorf("usages %v, want %v", c.ExtKeyUsage, old.Cert.ExtKeyUsage)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: tlstest.Pool(m.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("verify: %v", err)
			}
			if d := time.Until(c.NotAfter) - tt.want; d > time.Minute || d < -time.Minute {
				t.Errorf("expires in %v, want %v", time.Until(c.NotAfter), tt.want)
			}
			var out strings.Builder
			if err := r.Write(&out); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.output {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestRenewRefuses(t *testing.T) {
	dir := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	other := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	alice := issueIn(t, dir, tlsauth.KindClient, "alice")
	bob := issueIn(t, dir, tlsauth.KindClient, "bob")
	mallory := issueIn(t, other, tlsauth.KindClient, "mallory")
	ca, err := pki.LoadCA(pki.CAFiles(dir))
	if err != nil {
		t.Fatal(err)
	}
	cnOnly := tlstest.WritePair(t, dir, "cnonly", "", tlstest.Issued(t, tlstest.Sign(t, ca, tlstest.PeerTemplate("etcd-peer", ""))))
	tests := []struct {
		name             string
		caDir, cert, key string
		want             error
		msg              string
	}{
		{"another CA's certificate", dir, mallory.CertFile, mallory.KeyFile, pki.ErrNotIssuedHere, "renew it with the CA that issued it"},
		{"no SPIFFE identity", dir, cnOnly.CertFile, cnOnly.KeyFile, pki.ErrNoSPIFFEIdentity, "cairn cert issue"},
		{"key of another certificate", dir, alice.CertFile, bob.KeyFile, pki.ErrKeyMismatch, "pass the key of the certificate"},
		{"no CA", filepath.Join(t.TempDir(), "none"), alice.CertFile, alice.KeyFile, os.ErrNotExist, "cairn ca init --dir"},
		{"no certificate", dir, filepath.Join(dir, "nope.crt"), alice.KeyFile, os.ErrNotExist, "nope.crt"},
		{"the CA itself", dir, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), pki.ErrNoSPIFFEIdentity, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dirContents(t, dir)
			_, err := pki.Renew(pki.RenewRequest{CADir: tt.caDir, CertFile: tt.cert, KeyFile: tt.key, Validity: time.Hour})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.want, tt.msg)
			}
			if after := dirContents(t, dir); !maps.Equal(before, after) {
				t.Error("a refused renewal changed files")
			}
		})
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func readLeaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cf, err := pki.ReadCertificates(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return cf.Certs[0]
}

// dirContents maps the names of the files in dir to their contents.
func dirContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		m[e.Name()] = string(b)
	}
	return m
}
