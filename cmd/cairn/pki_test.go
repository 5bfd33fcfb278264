package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/cairnkv/cairn/cmd/cairn/e2e"
	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

const pkiTD = "cairn.internal"

// readCert returns the first certificate of a PEM file.
func readLeaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cf, err := pki.ReadCertificates(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return cf.Certs[0]
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

func assertNoFile(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists (err %v), want it missing", p, err)
		}
	}
}

// checkErr fails unless err matches want: nil for "", else an error
// containing want.
func checkPKIErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestCAInit(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // dir is --dir
		args    []string                       // after "ca init --dir DIR"
		td      string                         // expected trust domain
		valid   time.Duration                  // expected validity
		err     string
		refusal bool // the error must say how to proceed
		stdout  []string
	}{
		{name: "defaults", td: pkiTD, valid: 3650 * 24 * time.Hour,
			stdout: []string{`Created CA "Cairn CA (cairn.internal)" for trust domain cairn.internal`, "(3650 days)", "ca.crt  CA certificate", "ca.key  CA private key, mode 0600", "cairn cert issue --ca-dir "}},
		{name: "trust domain and validity", args: []string{"--trust-domain", "prod.example", "--valid", "5y"}, td: "prod.example", valid: 5 * 365 * 24 * time.Hour,
			stdout: []string{`"Cairn CA (prod.example)" for trust domain prod.example`, "(1825 days)"}},
		{name: "Go duration", args: []string{"--valid", "48h"}, td: pkiTD, valid: 48 * time.Hour, stdout: []string{"(2 days)"}},
		{name: "existing empty directory", setup: func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}, td: pkiTD, valid: 3650 * 24 * time.Hour},
		{name: "refuses an existing CA", setup: func(t *testing.T, dir string) {
			runPKI(t, "ca", "init", "--dir", dir)
		}, err: "ca.crt and " + "", td: pkiTD},
		{name: "refuses a lone ca.key", setup: func(t *testing.T, dir string) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, err: "ca.key already exists: cairn ca init never replaces a CA", refusal: true},
		{name: "bad validity", args: []string{"--valid", "ten years"}, err: "--valid: tlsauth: validity must be positive"},
		{name: "zero validity", args: []string{"--valid", "0d"}, err: "validity must be positive"},
		{name: "bad trust domain", args: []string{"--trust-domain", "Prod Example"}, err: "invalid trust domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sub", "pki")
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			before := dirFiles(t, dir)
			stdout, _, err := runCairn(t, nil, append([]string{"ca", "init", "--dir", dir}, tt.args...)...)
			checkPKIErr(t, err, tt.err)
			if tt.err != "" {
				if tt.refusal {
					if !strings.Contains(err.Error(), "never replaces a CA") || !strings.Contains(err.Error(), "cairn cert issue --ca-dir "+dir) || !strings.Contains(err.Error(), "pass another --dir") {
						t.Errorf("refusal does not say how to proceed: %v", err)
					}
				}
				if after := dirFiles(t, dir); !sameFiles(before, after) {
					t.Errorf("files changed by a failed ca init: before %v, after %v", fileNames(before), fileNames(after))
				}
				return
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
			assertMode(t, certFile, 0o644)
			assertMode(t, keyFile, 0o600)
			if tt.setup == nil {
				assertMode(t, dir, 0o700)
			}
			ca, err := pki.LoadCA(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
				t.Errorf("CA key %T, want ECDSA P-256", ca.Cert.PublicKey)
			}
			if td, ok := pki.CATrustDomain(ca.Cert); !ok || td != tt.td {
				t.Errorf("CA trust domain %q %v, want %q", td, ok, tt.td)
			}
			if d := time.Until(ca.Cert.NotAfter) - tt.valid; d > time.Minute || d < -time.Minute {
				t.Errorf("CA expires %v, want about now+%v", ca.Cert.NotAfter, tt.valid)
			}
		})
	}
}

// TestCAInitDefaultDir: without --dir the CA goes to ./pki.
func TestCAInitDefaultDir(t *testing.T) {
	t.Chdir(t.TempDir())
	stdout := runPKI(t, "ca", "init")
	if !strings.Contains(stdout, "pki/ca.crt") || !strings.Contains(stdout, "cairn cert issue --ca-dir pki --node n1") {
		t.Errorf("stdout:\n%s", stdout)
	}
	assertMode(t, "pki/ca.key", 0o600)
	_, _, err := runCairn(t, nil, "ca", "init")
	checkPKIErr(t, err, "pki/ca.crt and pki/ca.key already exist: cairn ca init never replaces a CA")

	// cert issue defaults to the same directory, for --ca-dir and --out.
	runPKI(t, "cert", "issue", "--client", "ops")
	assertMode(t, "pki/ops.key", 0o600)
	if _, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: "pki/ca.crt", CertFile: "pki/ops.crt", KeyFile: "pki/ops.key"}); err != nil {
		t.Fatal(err)
	}
}

func runPKI(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCairn(t, nil, args...)
	if err != nil {
		t.Fatalf("cairn %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// snapshotDir maps every file under dir to its content ("" if dir is
// missing).
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			m[p] = string(b)
		}
		return nil
	})
	return m
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func fileNames(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// issueRun is what a cert issue test looks at.
type issueRun struct {
	dir, out       string // --ca-dir, --out
	ca             *x509.Certificate
	stdout, stderr string
}

func (i issueRun) cert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	return readLeaf(t, filepath.Join(i.out, name+".crt"))
}

func TestCertIssue(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name  string
		caTD  string // trust domain of the CA; default cairn.internal
		caVal string // --valid of the CA; default 10y
		setup func(t *testing.T, i issueRun)
		args  []string // after "cert issue --ca-dir DIR"
		err   string
		check func(t *testing.T, i issueRun)
	}{
		{name: "node", args: []string{"--node", "n1", "--ip", "10.0.0.1", "--dns", "n1.example.net"}, check: func(t *testing.T, i issueRun) {
			c := checkLeaf(t, i, "n1", tlsauth.Identity{Name: "n1", Kind: tlsauth.KindNode}, 90*day)
			if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
				t.Errorf("EKU %v", c.ExtKeyUsage)
			}
			if got := ipStrings(c); !slices.Equal(got, []string{"10.0.0.1"}) {
				t.Errorf("IP SANs %v, want only 10.0.0.1 (no loopback unless asked)", got)
			}
			if !slices.Equal(c.DNSNames, []string{"n1.example.net"}) {
				t.Errorf("DNS SANs %v", c.DNSNames)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: tlstest.Pool(i.ca), DNSName: "n1.example.net", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("verify as server: %v", err)
			}
			for _, s := range []string{"Issued node certificate node/n1 (spiffe://cairn.internal/node/n1)", "(90 days)", "ip addresses:", "10.0.0.1", "n1.example.net",
				"cairn serve --name n1 --ca-file ca.crt --cert-file n1.crt --key-file n1.key", "guard " + filepath.Join(i.out, "n1.key")} {
				if !strings.Contains(i.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, i.stdout)
				}
			}
			assertNoFile(t, filepath.Join(i.out, "n1.p12"))
		}},
		{name: "node, several addresses and loopback when asked", args: []string{"--node", "n2", "--ip", "10.0.0.2,::1", "--ip", "127.0.0.1", "--dns", "localhost", "--dns", "n2.example.net"}, check: func(t *testing.T, i issueRun) {
			c := checkLeaf(t, i, "n2", tlsauth.Identity{Name: "n2", Kind: tlsauth.KindNode}, 90*day)
			if got := ipStrings(c); !slices.Equal(got, []string{"10.0.0.2", "::1", "127.0.0.1"}) {
				t.Errorf("IP SANs %v", got)
			}
			if !slices.Equal(c.DNSNames, []string{"localhost", "n2.example.net"}) {
				t.Errorf("DNS SANs %v", c.DNSNames)
			}
		}},
		{name: "client", args: []string{"--client", "alice", "--valid", "1y"}, check: func(t *testing.T, i issueRun) {
			c := checkLeaf(t, i, "alice", tlsauth.Identity{Name: "alice", Kind: tlsauth.KindClient}, 365*day)
			if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(c.IPAddresses)+len(c.DNSNames) != 0 {
				t.Errorf("EKU %v IPs %v DNS %v", c.ExtKeyUsage, c.IPAddresses, c.DNSNames)
			}
			for _, s := range []string{"Issued client certificate client/alice (spiffe://cairn.internal/client/alice)", "(365 days)", "curl --cacert " + filepath.Join(i.dir, "ca.crt") + " --cert " + filepath.Join(i.out, "alice.crt")} {
				if !strings.Contains(i.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, i.stdout)
				}
			}
		}},
		{name: "client, Go duration", args: []string{"--client", "ci", "--valid", "36h"}, check: func(t *testing.T, i issueRun) {
			checkLeaf(t, i, "ci", tlsauth.Identity{Name: "ci", Kind: tlsauth.KindClient}, 36*time.Hour)
		}},
		{name: "other output directory", args: []string{"--client", "ops", "--out", "OUT/certs"}, check: func(t *testing.T, i issueRun) {
			checkLeaf(t, i, "ops", tlsauth.Identity{Name: "ops", Kind: tlsauth.KindClient}, 90*day)
			assertMode(t, i.out, 0o700)
			assertNoFile(t, filepath.Join(i.dir, "ops.crt"), filepath.Join(i.dir, "ops.key"))
		}},
		{name: "trust domain from the CA", caTD: "prod.example", args: []string{"--node", "n1", "--ip", "10.0.0.1"}, check: func(t *testing.T, i issueRun) {
			c := i.cert(t, "n1")
			if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://prod.example/node/n1" {
				t.Errorf("URIs %v, want the CA's trust domain", c.URIs)
			}
		}},
		{name: "explicit trust domain differing from the CA's", args: []string{"--client", "x", "--trust-domain", "other.example"}, check: func(t *testing.T, i issueRun) {
			c := i.cert(t, "x")
			if c.URIs[0].String() != "spiffe://other.example/client/x" {
				t.Errorf("URIs %v", c.URIs)
			}
			if !strings.Contains(i.stderr, "warning: the CA was made for trust domain cairn.internal, the certificate is for other.example") {
				t.Errorf("stderr: %s", i.stderr)
			}
		}},
		{name: "not beyond the CA", caVal: "30d", args: []string{"--client", "long", "--valid", "1y"}, check: func(t *testing.T, i issueRun) {
			if c := i.cert(t, "long"); !c.NotAfter.Equal(i.ca.NotAfter) {
				t.Errorf("NotAfter %v, want the CA's %v", c.NotAfter, i.ca.NotAfter)
			}
			if !strings.Contains(i.stderr, "warning: the CA expires on") || !strings.Contains(i.stdout, "(30 days)") {
				t.Errorf("stdout %s\nstderr %s", i.stdout, i.stderr)
			}
		}},
		{name: "p12 with a password", setup: setupFile("pw", "correct horse\n"), args: []string{"--client", "alice", "--p12", "--p12-password-file", "PW"}, check: func(t *testing.T, i issueRun) {
			checkP12(t, i, "alice", "correct horse")
			if strings.Contains(i.stderr, "empty password") {
				t.Errorf("stderr: %s", i.stderr)
			}
			if !strings.Contains(i.stdout, "alice.p12  PKCS#12: key, certificate and CA certificate, mode 0600") {
				t.Errorf("stdout: %s", i.stdout)
			}
		}},
		{name: "password file implies p12", setup: setupFile("pw", "s3cret\r\nignored\n"), args: []string{"--node", "n1", "--ip", "10.0.0.1", "--p12-password-file", "PW"}, check: func(t *testing.T, i issueRun) {
			checkP12(t, i, "n1", "s3cret")
		}},
		{name: "p12 without a password", args: []string{"--client", "bob", "--p12"}, check: func(t *testing.T, i issueRun) {
			checkP12(t, i, "bob", "")
			if !strings.Contains(i.stderr, "bob.p12 has an empty password") {
				t.Errorf("no warning about the empty password: %s", i.stderr)
			}
		}},
		{name: "refuses to overwrite", setup: func(t *testing.T, i issueRun) {
			runPKI(t, "cert", "issue", "--ca-dir", i.dir, "--client", "alice")
		}, args: []string{"--client", "alice"}, err: "alice.key already exist: pass --force to replace the files (a renewal: the old certificate stays valid until it expires), or choose another --out"},
		{name: "refuses to overwrite a node with a client of the same name", setup: func(t *testing.T, i issueRun) {
			runPKI(t, "cert", "issue", "--ca-dir", i.dir, "--node", "x", "--ip", "10.0.0.9")
		}, args: []string{"--client", "x"}, err: "x.key already exist: pass --force to replace the files"},
		{name: "refuses to overwrite a p12", setup: setupFile("alice.p12", "old"), args: []string{"--client", "alice", "--p12"}, err: "alice.p12 already exists: pass --force"},
		{name: "force renews", setup: func(t *testing.T, i issueRun) {
			runPKI(t, "cert", "issue", "--ca-dir", i.dir, "--client", "alice", "--p12")
			if err := os.WriteFile(filepath.Join(i.dir, "old-serial"), i.cert(t, "alice").SerialNumber.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
		}, args: []string{"--client", "alice", "--force"}, check: func(t *testing.T, i issueRun) {
			old, _ := os.ReadFile(filepath.Join(i.dir, "old-serial"))
			if bytes.Equal(old, i.cert(t, "alice").SerialNumber.Bytes()) {
				t.Error("--force kept the old certificate")
			}
			if !strings.Contains(i.stderr, "alice.p12 still holds the previous certificate") {
				t.Errorf("stderr: %s", i.stderr)
			}
			checkLeaf(t, i, "alice", tlsauth.Identity{Name: "alice", Kind: tlsauth.KindClient}, 90*day)
		}},
		{name: "never overwrites the CA", args: []string{"--client", "ca", "--force"}, err: `the name "ca" would overwrite the CA's own`},
		{name: "node without addresses", args: []string{"--node", "n1"}, err: "a node certificate needs the addresses clients and peers dial it at: pass --ip and/or --dns"},
		{name: "client with an address", args: []string{"--client", "c", "--ip", "10.0.0.1"}, err: "--ip and --dns apply to node certificates only"},
		{name: "name in --ip", args: []string{"--node", "n1", "--ip", "n1.example.net"}, err: `--ip "n1.example.net" is not an IP address`},
		{name: "IP in --dns", args: []string{"--node", "n1", "--dns", "10.0.0.1"}, err: `--dns "10.0.0.1" is an IP address: use --ip`},
		{name: "host:port in --dns", args: []string{"--node", "n1", "--dns", "n1.example.net:7001"}, err: "looks like host:port"},
		{name: "node and client", args: []string{"--node", "a", "--client", "b"}, err: "either --node NAME or --client NAME, not both"},
		{name: "neither", args: []string{"--ip", "10.0.0.1"}, err: "pass --node NAME (a cluster member) or --client NAME"},
		{name: "bad name", args: []string{"--client", "a/b"}, err: "invalid name"},
		{name: "bad validity", args: []string{"--client", "a", "--valid", "-1d"}, err: "--valid: tlsauth: validity must be positive"},
		{name: "missing password file", args: []string{"--client", "a", "--p12-password-file", "/nonexistent/pw"}, err: "password file: open /nonexistent/pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			i := issueRun{dir: filepath.Join(root, "pki")}
			i.out = i.dir
			caArgs := []string{"ca", "init", "--dir", i.dir}
			if tt.caTD != "" {
				caArgs = append(caArgs, "--trust-domain", tt.caTD)
			}
			if tt.caVal != "" {
				caArgs = append(caArgs, "--valid", tt.caVal)
			}
			runPKI(t, caArgs...)
			i.ca = readLeaf(t, filepath.Join(i.dir, "ca.crt"))
			if tt.setup != nil {
				tt.setup(t, i)
			}
			args := []string{"cert", "issue", "--ca-dir", i.dir}
			for _, a := range tt.args {
				switch a {
				case "PW":
					a = filepath.Join(i.dir, "pw")
				case "OUT/certs":
					a = filepath.Join(root, "out", "certs")
					i.out = a
				}
				args = append(args, a)
			}
			before := dirFiles(t, root)
			var err error
			i.stdout, i.stderr, err = runCairn(t, nil, args...)
			checkPKIErr(t, err, tt.err)
			if tt.err != "" {
				if after := dirFiles(t, root); !sameFiles(before, after) {
					t.Errorf("files changed by a failed cert issue: before %v, after %v", fileNames(before), fileNames(after))
				}
				return
			}
			tt.check(t, i)
		})
	}
}

// writeFile returns a setup writing content to name in the CA directory.
func setupFile(name, content string) func(*testing.T, issueRun) {
	return func(t *testing.T, i issueRun) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(i.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLeaf checks the files of an issued certificate and returns it.
func checkLeaf(t *testing.T, i issueRun, name string, want tlsauth.Identity, validity time.Duration) *x509.Certificate {
	t.Helper()
	certFile, keyFile := filepath.Join(i.out, name+".crt"), filepath.Join(i.out, name+".key")
	assertMode(t, certFile, 0o644)
	assertMode(t, keyFile, 0o600)
	m, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: filepath.Join(i.dir, "ca.crt"), CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatalf("load issued pair: %v", err)
	}
	c := m.Certificate().Leaf
	id, err := tlsauth.IdentityFromCert(c, pkiTD)
	if td, ok := pki.CATrustDomain(i.ca); ok && td != pkiTD {
		id, err = tlsauth.IdentityFromCert(c, td)
	}
	if err != nil || id != want {
		t.Errorf("identity %v (%v), want %v", id, err, want)
	}
	if len(c.URIs) != 1 {
		t.Errorf("URIs %v, want one SPIFFE ID", c.URIs)
	}
	if c.Subject.CommonName != name {
		t.Errorf("CN %q, want %q", c.Subject.CommonName, name)
	}
	if d := time.Until(c.NotAfter) - validity; d > time.Minute || d < -time.Minute {
		t.Errorf("NotAfter %v, want about now+%v", c.NotAfter, validity)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: tlstest.Pool(i.ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify as client: %v", err)
	}
	return c
}

// checkP12 decodes <name>.p12 with go-pkcs12 and compares it with the PEM
// pair.
func checkP12(t *testing.T, i issueRun, name, password string) {
	t.Helper()
	p12File := filepath.Join(i.out, name+".p12")
	assertMode(t, p12File, 0o600)
	data, err := os.ReadFile(p12File)
	if err != nil {
		t.Fatal(err)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		t.Fatalf("decode %s: %v", p12File, err)
	}
	if !leaf.Equal(i.cert(t, name)) {
		t.Error("the .p12 certificate differs from the .crt")
	}
	if len(chain) != 1 || !chain[0].Equal(i.ca) {
		t.Errorf("the .p12 chain has %d certificates, want the CA", len(chain))
	}
	pemKey, err := os.ReadFile(filepath.Join(i.out, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(pemKey)
	want, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := key.(*ecdsa.PrivateKey); !ok || !k.Equal(want) {
		t.Error("the .p12 key differs from the .key")
	}
	if _, _, _, err := pkcs12.DecodeChain(data, password+"x"); err == nil {
		t.Error("the .p12 opens with a wrong password")
	}
}

func ipStrings(c *x509.Certificate) []string {
	var s []string
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	return s
}

// signWith issues tmpl from the CA in dir (certificates the CA would not
// issue: expired, not yet valid, odd usages, another trust domain) and
// writes it as <name>.crt and <name>.key there; it returns the
// certificate file.
func signWith(t *testing.T, dir, name string, tmpl *x509.Certificate) string {
	t.Helper()
	ca, err := pki.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	return tlstest.WritePair(t, dir, name, "", tlstest.Issued(t, tlstest.Sign(t, ca, tmpl))).CertFile
}

func leafTemplate(cn string, notBefore, notAfter time.Time, eku []x509.ExtKeyUsage, uris ...string) *x509.Certificate {
	c := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: eku,
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			panic(err)
		}
		c.URIs = append(c.URIs, u)
	}
	return c
}

func TestCertInspect(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pki")
	other := filepath.Join(root, "other")
	runPKI(t, "ca", "init", "--dir", dir)
	runPKI(t, "ca", "init", "--dir", other, "--trust-domain", "other.example")
	runPKI(t, "cert", "issue", "--ca-dir", dir, "--node", "n1", "--ip", "10.0.0.1", "--dns", "n1.example.net")
	if err := os.WriteFile(filepath.Join(root, "pw"), []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runPKI(t, "cert", "issue", "--ca-dir", dir, "--client", "alice", "--p12-password-file", filepath.Join(root, "pw"))
	runPKI(t, "cert", "issue", "--ca-dir", other, "--client", "mallory", "--p12")
	now := time.Now()
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	expired := signWith(t, dir, "expired", leafTemplate("old", now.Add(-48*time.Hour), now.Add(-24*time.Hour), client, "spiffe://cairn.internal/client/old"))
	future := signWith(t, dir, "future", leafTemplate("new", now.Add(24*time.Hour), now.Add(48*time.Hour), client, "spiffe://cairn.internal/client/new"))
	soon := signWith(t, dir, "soon", leafTemplate("soon", now.Add(-time.Hour), now.Add(10*24*time.Hour+time.Hour), client, "spiffe://cairn.internal/client/soon"))
	cnOnly := signWith(t, dir, "cnonly", leafTemplate("etcd-peer", now.Add(-time.Hour), now.Add(24*time.Hour), []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}))
	serverOnly := signWith(t, dir, "serveronly", leafTemplate("web", now.Add(-time.Hour), now.Add(24*time.Hour), []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "spiffe://cairn.internal/node/web"))
	foreignTD := signWith(t, dir, "foreigntd", leafTemplate("x", now.Add(-time.Hour), now.Add(24*time.Hour), client, "spiffe://evil.example/client/x"))

	n1 := filepath.Join(dir, "n1.crt")
	bundle := filepath.Join(root, "bundle.pem")
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	leafPEM, _ := os.ReadFile(n1)
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "n1.key"))
	if err := os.WriteFile(bundle, slices.Concat(leafPEM, ca, keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	der := filepath.Join(root, "n1.der")
	b, _ := pem.Decode(leafPEM)
	if err := os.WriteFile(der, b.Bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(root, "garbage")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	caFile, otherCA := filepath.Join(dir, "ca.crt"), filepath.Join(other, "ca.crt")

	tests := []struct {
		name string
		args []string
		err  string   // "" for exit status 0
		out  []string // lines (prefixes) expected on stdout
		not  []string
	}{
		{name: "node with chain", args: []string{n1, "--ca", caFile}, out: []string{
			"file:           " + n1 + " (PEM)",
			"identity:       node/n1 (spiffe://cairn.internal/node/n1)",
			"role:           node",
			"trust domain:   cairn.internal",
			"subject:        CN=n1",
			"issuer:         CN=Cairn CA (cairn.internal)",
			"serial:         ",
			"dns names:      n1.example.net",
			"ip addresses:   10.0.0.1",
			"uris:           spiffe://cairn.internal/node/n1",
			"public key:     ECDSA P-256",
			"key usage:      digitalSignature",
			"ext key usage:  serverAuth, clientAuth",
			"not before:     ",
			"not after:      ",
			"validity:       valid, 89 days left",
			"chain:          OK: CN=n1 <- CN=Cairn CA (cairn.internal)",
		}, not: []string{"warning:"}},
		{name: "node without --ca", args: []string{n1}, out: []string{"chain:          not checked (pass --ca CAFILE)"}},
		{name: "p12 with password", args: []string{filepath.Join(dir, "alice.p12"), "--password-file", filepath.Join(root, "pw"), "--ca", caFile}, out: []string{
			"file:           " + filepath.Join(dir, "alice.p12") + " (PKCS#12, 2 certificates, with private key)", "identity:       client/alice", "role:           client", "ext key usage:  clientAuth",
			"chain:          OK: CN=alice <- CN=Cairn CA (cairn.internal)", "also in file:   CN=Cairn CA (cairn.internal)",
		}},
		{name: "p12 without its password", args: []string{filepath.Join(dir, "alice.p12")}, err: "wrong PKCS#12 password; the file has a password: pass --password-file"},
		{name: "p12 with a wrong password", args: []string{filepath.Join(dir, "alice.p12"), "--password-file", caFile}, err: "wrong PKCS#12 password; check --password-file"},
		{name: "bundle: leaf, CA, key", args: []string{bundle, "--ca", caFile}, out: []string{"file:           " + bundle + " (PEM, 2 certificates, with private key)", "identity:       node/n1", "also in file:   CN=Cairn CA (cairn.internal)", "chain:          OK"}},
		{name: "DER", args: []string{der}, out: []string{"file:           " + der + " (DER)", "identity:       node/n1"}},
		{name: "expired", args: []string{expired, "--ca", caFile}, err: "expired 1 day ago", out: []string{"validity:       expired 1 day ago, on ", "chain:          FAILED: x509: certificate has expired or is not yet valid"}},
		{name: "expired, no chain check", args: []string{expired}, err: "expired.crt: expired 1 day ago", out: []string{"identity:       client/old"}},
		{name: "not yet valid", args: []string{future}, err: "not yet valid: valid from ", out: []string{"validity:       not yet valid: valid from "}},
		{name: "another CA", args: []string{filepath.Join(other, "mallory.crt"), "--ca", caFile}, err: "chain check failed: x509: certificate signed by unknown authority",
			out: []string{"chain:          FAILED: x509: certificate signed by unknown authority", "validity:       valid"}},
		{name: "another CA, its own trust domain", args: []string{filepath.Join(other, "mallory.crt"), "--ca", otherCA}, out: []string{"identity:       client/mallory", "trust domain:   other.example", "chain:          OK"}},
		{name: "another trust domain", args: []string{filepath.Join(other, "mallory.crt")}, err: "no usable identity: certificate belongs to another trust domain",
			out: []string{"identity:       none: certificate belongs to another trust domain: spiffe://other.example/client/mallory is not in trust domain \"cairn.internal\"", "role:           unknown"}},
		{name: "--trust-domain", args: []string{foreignTD, "--trust-domain", "evil.example", "--ca", caFile}, out: []string{"identity:       client/x", "trust domain:   evil.example"}},
		{name: "foreign trust domain", args: []string{foreignTD, "--ca", caFile}, err: "no usable identity"},
		{name: "CN only", args: []string{cnOnly, "--ca", caFile}, out: []string{"identity:       etcd-peer (by CN: the certificate has no SPIFFE URI SAN)", "role:           unknown (a node on the peer port only if --peer-cert-allowed-cn lists its CN; else a client)", "uris:           none"}},
		{name: "node without clientAuth: a warning", args: []string{serverOnly, "--ca", caFile}, out: []string{"role:           node", "warning:        no clientAuth extended key usage: the node cannot dial other nodes", "warning:        no IP or DNS names"}},
		{name: "expiring soon: a warning", args: []string{soon, "--ca", caFile}, out: []string{"validity:       valid, 10 days left", "warning:        expires in 10 days: issue a new one (cairn cert issue --force)"}},
		{name: "the CA itself", args: []string{caFile, "--ca", caFile}, out: []string{"role:           unknown (a CA certificate)", "warning:        this is a CA certificate", "key usage:      keyCertSign, cRLSign"}},
		{name: "missing file", args: []string{filepath.Join(root, "nope.crt")}, err: "no such file or directory"},
		{name: "not a certificate", args: []string{garbage}, err: "not a PEM, DER or PKCS#12 certificate file"},
		{name: "bad trust domain", args: []string{n1, "--trust-domain", "A B"}, err: "invalid trust domain"},
		{name: "no file", args: nil, err: "accepts 1 arg(s), received 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runCairn(t, nil, append([]string{"cert", "inspect"}, tt.args...)...)
			checkPKIErr(t, err, tt.err)
			lines := strings.Split(stdout, "\n")
			for _, want := range tt.out {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
					t.Errorf("no line starting %q in:\n%s", want, stdout)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout has %q:\n%s", s, stdout)
				}
			}
		})
	}
}

// needOpenSSL returns the openssl binary, or skips (fails under
// CAIRN_REQUIRE_EXTERNAL=1) without it.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err == nil {
		return p
	}
	msg := "this test needs openssl in PATH (Debian: apt-get install openssl): " + err.Error()
	if os.Getenv(e2e.RequireExternalEnv) == "1" {
		t.Fatalf("%s; %s=1 makes that a failure", msg, e2e.RequireExternalEnv)
	}
	t.Skip(msg)
	return ""
}

// recipe returns the ```sh blocks of the section "Your own PKI with
// openssl" of docs/security.md, in order.
func recipe(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## Your own PKI with openssl\n")
	if !ok {
		t.Fatal(`docs/security.md has no section "## Your own PKI with openssl"`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindAllStringSubmatch(sec, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) != 4 {
		t.Fatalf("found %d sh blocks in the openssl section, want 4 (CA, node, CN client, URI client)", len(blocks))
	}
	return blocks
}

// TestOpenSSLRecipe runs the openssl commands of docs/security.md and
// checks that Cairn accepts what they make: identities, real handshakes on
// the client and the peer port, and cairn cert inspect.
func TestOpenSSLRecipe(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	for i, block := range recipe(t) {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", block)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("block %d of the recipe failed: %v\n%s\n--- output:\n%s", i+1, err, block, out)
		}
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	for _, k := range []string{"ca.key", "n1.key", "alice.key", "bob.key"} {
		assertMode(t, path(k), 0o600)
	}

	wantIDs := map[string]tlsauth.Identity{
		"n1":    {Name: "n1", Kind: tlsauth.KindNode},
		"alice": {Name: "alice", Kind: tlsauth.KindCN},
		"bob":   {Name: "bob", Kind: tlsauth.KindClient},
	}
	mats := map[string]*tlsconf.Material{}
	for name, want := range wantIDs {
		m, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: path("ca.crt"), CertFile: path(name + ".crt"), KeyFile: path(name + ".key")})
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		mats[name] = m
		if id, err := tlsauth.IdentityFromCert(m.Certificate().Leaf, pkiTD); err != nil || id != want {
			t.Errorf("%s: identity %v (%v), want %v", name, id, err, want)
		}
	}
	if _, err := pki.LoadCA(path("ca.crt"), path("ca.key")); err != nil {
		t.Errorf("LoadCA: %v", err)
	}

	o := tlsconf.Options{}
	node := mats["n1"]
	t.Run("client port", func(t *testing.T) {
		for _, name := range []string{"alice", "bob", "n1"} {
			cli := mats[name].ClientConfig(o)
			cli.ServerName = "10.0.0.1" // the node's IP SAN
			r := tlstest.Handshake(t, node.ServerConfig(o), cli)
			if r.ClientErr != nil || r.ServerErr != nil {
				t.Fatalf("%s: client %v, server %v", name, r.ClientErr, r.ServerErr)
			}
			id, err := tlsauth.PeerIdentity(r.Server, pkiTD)
			if err != nil || id != wantIDs[name] {
				t.Errorf("%s: server sees %v (%v)", name, id, err)
			}
		}
		cli := mats["bob"].ClientConfig(o)
		cli.ServerName = "n1.example.net"
		if r := tlstest.Handshake(t, node.ServerConfig(o), cli); r.ClientErr != nil {
			t.Errorf("by DNS name: %v", r.ClientErr)
		}
	})
	t.Run("peer port", func(t *testing.T) {
		tests := []struct {
			client     string
			allowedCNs []string
			ok         bool
		}{
			{"n1", nil, true},
			{"bob", nil, false},
			{"alice", nil, false},
			{"alice", []string{"alice"}, true},
		}
		for _, tt := range tests {
			cli := mats[tt.client].PeerClientConfig(o, pkiTD, tt.allowedCNs)
			if tt.client != "n1" {
				cli = mats[tt.client].ClientConfig(o)
				cli.NextProtos = []string{tlsconf.PeerALPN}
			}
			cli.ServerName = "10.0.0.1"
			r := tlstest.Handshake(t, node.PeerServerConfig(o, pkiTD, tt.allowedCNs), cli)
			if tt.ok && (r.ClientErr != nil || r.ServerErr != nil) {
				t.Errorf("%s (allowed CNs %v): client %v, server %v", tt.client, tt.allowedCNs, r.ClientErr, r.ServerErr)
			}
			if !tt.ok && !errors.Is(r.ServerErr, tlsconf.ErrNotNode) {
				t.Errorf("%s (allowed CNs %v): server error %v, want ErrNotNode", tt.client, tt.allowedCNs, r.ServerErr)
			}
		}
	})
	t.Run("cairn cert inspect", func(t *testing.T) {
		tests := []struct {
			name string
			want []string
		}{
			{"n1", []string{"identity:       node/n1 (spiffe://cairn.internal/node/n1)", "role:           node", "ip addresses:   10.0.0.1", "dns names:      n1.example.net",
				"ext key usage:  serverAuth, clientAuth", "chain:          OK: CN=n1 <- CN=Example Cairn CA"}},
			{"alice", []string{"identity:       alice (by CN", "role:           unknown (", "ext key usage:  clientAuth", "chain:          OK: CN=alice <- CN=Example Cairn CA"}},
			{"bob", []string{"identity:       client/bob (spiffe://cairn.internal/client/bob)", "role:           client", "chain:          OK: CN=bob <- CN=Example Cairn CA"}},
		}
		for _, tt := range tests {
			stdout := runPKI(t, "cert", "inspect", path(tt.name+".crt"), "--ca", path("ca.crt"))
			for _, w := range tt.want {
				if !strings.Contains(stdout, "\n"+w) {
					t.Errorf("%s: no line %q in:\n%s", tt.name, w, stdout)
				}
			}
			if strings.Contains(stdout, "warning:") {
				t.Errorf("%s: warnings:\n%s", tt.name, stdout)
			}
		}
	})
}

// TestOpenSSLReadsCairnPKI: what cairn ca init and cairn cert issue make,
// openssl verifies and opens (the .p12 included).
func TestOpenSSLReadsCairnPKI(t *testing.T) {
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	runPKI(t, "ca", "init", "--dir", dir)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runPKI(t, "cert", "issue", "--ca-dir", dir, "--node", "n1", "--ip", "10.0.0.1", "--p12-password-file", pw)
	runPKI(t, "cert", "issue", "--ca-dir", dir, "--client", "anon", "--p12")
	ca := filepath.Join(dir, "ca.crt")
	for _, args := range [][]string{
		{"verify", "-CAfile", ca, "-purpose", "sslserver", filepath.Join(dir, "n1.crt")},
		{"verify", "-CAfile", ca, "-purpose", "sslclient", filepath.Join(dir, "n1.crt")},
		{"verify", "-CAfile", ca, "-purpose", "sslclient", filepath.Join(dir, "anon.crt")},
		{"pkcs12", "-in", filepath.Join(dir, "n1.p12"), "-passin", "pass:s3cret", "-noout"},
		{"pkcs12", "-in", filepath.Join(dir, "anon.p12"), "-passin", "pass:", "-noout"},
	} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Errorf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := exec.Command(openssl, "pkcs12", "-in", filepath.Join(dir, "n1.p12"), "-passin", "pass:wrong", "-noout").CombinedOutput(); err == nil {
		t.Errorf("openssl opened n1.p12 with a wrong password:\n%s", out)
	}

	// The CRL of cairn cert revoke is one openssl checks against.
	runPKI(t, "cert", "revoke", "--ca-dir", dir, "--cert", filepath.Join(dir, "anon.crt"), "--reason", "keyCompromise")
	crl := filepath.Join(dir, "ca.crl")
	if out, err := exec.Command(openssl, "verify", "-crl_check", "-CAfile", ca, "-CRLfile", crl, filepath.Join(dir, "n1.crt")).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -crl_check n1.crt: %v\n%s", err, out)
	}
	out, err := exec.Command(openssl, "verify", "-crl_check", "-CAfile", ca, "-CRLfile", crl, filepath.Join(dir, "anon.crt")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate revoked") {
		t.Errorf("openssl verify -crl_check anon.crt: %v, want certificate revoked\n%s", err, out)
	}
}

// TestCertRenew runs cairn cert renew against the files cairn cert issue
// made: the renewal keeps identity and addresses, and refusals change no
// file.
func TestCertRenew(t *testing.T) {
	root := t.TempDir()
	dir, other := filepath.Join(root, "pki"), filepath.Join(root, "other")
	runPKI(t, "ca", "init", "--dir", dir)
	runPKI(t, "ca", "init", "--dir", other)
	runPKI(t, "cert", "issue", "--ca-dir", dir, "--node", "n1", "--ip", "10.0.0.1", "--dns", "n1.example.net")
	runPKI(t, "cert", "issue", "--ca-dir", dir, "--client", "alice")
	runPKI(t, "cert", "issue", "--ca-dir", other, "--client", "mallory")
	path := func(d, name string) string { return filepath.Join(d, name) }
	tests := []struct {
		name  string
		args  []string // after "cert renew --ca-dir DIR"
		err   string
		out   []string
		valid time.Duration
	}{
		{name: "node", args: []string{"--cert", path(dir, "n1.crt"), "--key", path(dir, "n1.key")}, valid: 90 * 24 * time.Hour,
			out: []string{"Renewed node certificate node/n1 (spiffe://cairn.internal/node/n1)", "(90 days)", "10.0.0.1", "n1.example.net", "new private key, mode 0600", "cairn cert revoke --ca-dir " + dir + " --serial "}},
		{name: "client, 30 days", args: []string{"--cert", path(dir, "alice.crt"), "--key", path(dir, "alice.key"), "--valid", "30d"}, valid: 30 * 24 * time.Hour,
			out: []string{"Renewed client certificate client/alice", "(30 days)"}},
		{name: "another CA's certificate", args: []string{"--cert", path(other, "mallory.crt"), "--key", path(other, "mallory.key")}, err: "certificate is not issued by this CA in " + dir},
		{name: "the key of another certificate", args: []string{"--cert", path(dir, "n1.crt"), "--key", path(dir, "alice.key")}, err: "private key does not match certificate"},
		{name: "no --key", args: []string{"--cert", path(dir, "n1.crt")}, err: `required flag(s) "key" not set`},
		{name: "bad validity", args: []string{"--cert", path(dir, "n1.crt"), "--key", path(dir, "n1.key"), "--valid", "soon"}, err: "--valid: tlsauth: validity must be positive"},
		{name: "missing certificate", args: []string{"--cert", path(dir, "nope.crt"), "--key", path(dir, "nope.key")}, err: "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dirFiles(t, root)
			var oldSerial *big.Int
			if tt.err == "" {
				oldSerial = readLeaf(t, tt.args[1]).SerialNumber
			}
			stdout, _, err := runCairn(t, nil, append([]string{"cert", "renew", "--ca-dir", dir}, tt.args...)...)
			checkPKIErr(t, err, tt.err)
			if tt.err != "" {
				if after := dirFiles(t, root); !sameFiles(before, after) {
					t.Errorf("files changed by a failed renewal")
				}
				return
			}
			for _, s := range append(tt.out, "(was "+pki.SerialHex(oldSerial)+")") {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			c := readLeaf(t, tt.args[1])
			if c.SerialNumber.Cmp(oldSerial) == 0 {
				t.Error("the certificate was not replaced")
			}
			if d := time.Until(c.NotAfter) - tt.valid; d > time.Minute || d < -time.Minute {
				t.Errorf("expires in %v, want %v", time.Until(c.NotAfter), tt.valid)
			}
			assertMode(t, tt.args[3], 0o600)
			if _, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: path(dir, "ca.crt"), CertFile: tt.args[1], KeyFile: tt.args[3]}); err != nil {
				t.Errorf("the renewed pair does not load: %v", err)
			}
		})
	}
}

// TestCertRevoke runs cairn cert revoke step by step on one CA: the CRL
// grows, keeps its entries, and bad requests change nothing.
func TestCertRevoke(t *testing.T) {
	root := t.TempDir()
	dir, other := filepath.Join(root, "pki"), filepath.Join(root, "other")
	runPKI(t, "ca", "init", "--dir", dir)
	runPKI(t, "ca", "init", "--dir", other)
	for _, c := range []string{"alice", "bob"} {
		runPKI(t, "cert", "issue", "--ca-dir", dir, "--client", c)
	}
	runPKI(t, "cert", "issue", "--ca-dir", other, "--client", "mallory")
	bob := readLeaf(t, filepath.Join(dir, "bob.crt")).SerialNumber
	crl := filepath.Join(dir, "ca.crl")
	tests := []struct {
		name   string
		args   []string // after "cert revoke --ca-dir DIR"
		err    string
		out    []string
		listed int // entries of the CRL after the step
	}{
		{name: "by certificate, with a reason", args: []string{"--cert", filepath.Join(dir, "alice.crt"), "--reason", "keyCompromise"},
			out: []string{"Revoked serial ", "(CN=alice)", "(keyCompromise)", crl + "  CRL created: number 1, 1 revoked", "crl_file is " + crl}, listed: 1},
		{name: "by serial, with colons", args: []string{"--serial", colonHex(bob)},
			out: []string{"Revoked serial " + pki.SerialHex(bob) + " as of", "(unspecified)", "CRL updated: number 2, 2 revoked"}, listed: 2},
		{name: "again", args: []string{"--serial", pki.SerialHex(bob)}, out: []string{"Already revoked: serial " + pki.SerialHex(bob), "number 3, 2 revoked"}, listed: 2},
		{name: "another CA's certificate", args: []string{"--cert", filepath.Join(other, "mallory.crt")}, err: "only the CA that issued a certificate can revoke it", listed: 2},
		{name: "both", args: []string{"--cert", filepath.Join(dir, "alice.crt"), "--serial", "01"}, err: "pass either --cert FILE or --serial HEX", listed: 2},
		{name: "neither", args: nil, err: "pass either --cert FILE or --serial HEX", listed: 2},
		{name: "bad serial", args: []string{"--serial", "xyz"}, err: "--serial: tlsauth: serial number \"xyz\"", listed: 2},
		{name: "bad reason", args: []string{"--serial", "01", "--reason", "stolen"}, err: "--reason: tlsauth: unknown revocation reason \"stolen\"; use one of unspecified, keyCompromise", listed: 2},
		{name: "bad CRL validity", args: []string{"--serial", "01", "--crl-valid", "0d"}, err: "--crl-valid: tlsauth: validity must be positive", listed: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dirFiles(t, root)
			stdout, _, err := runCairn(t, nil, append([]string{"cert", "revoke", "--ca-dir", dir}, tt.args...)...)
			checkPKIErr(t, err, tt.err)
			if tt.err != "" {
				if after := dirFiles(t, root); !sameFiles(before, after) {
					t.Errorf("files changed by a failed revocation")
				}
			}
			for _, s := range tt.out {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			data, err := os.ReadFile(crl)
			if err != nil {
				t.Fatal(err)
			}
			lists, err := pki.ParseCRLs(data)
			if err != nil || len(lists) != 1 || len(lists[0].RevokedCertificateEntries) != tt.listed {
				t.Errorf("CRL: %v, want one list of %d entries", err, tt.listed)
			}
			assertMode(t, crl, 0o644)
		})
	}
}

// colonHex writes n as cairn cert inspect's serial line does.
func colonHex(n *big.Int) string {
	h := pki.SerialHex(n)
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// docBlocks returns the ```sh blocks of section title of docs/security.md.
func docBlocks(t *testing.T, title string) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("docs/security.md has no section %q", title)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindAllStringSubmatch(sec, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestSecurityDocCairnPKI runs the cairn commands of docs/security.md's
// "A PKI with `cairn`" and "Renewing and revoking with `cairn`", in that
// order, in an empty directory, and checks what they made.
func TestSecurityDocCairnPKI(t *testing.T) {
	var blocks []string
	for _, title := range []string{"A PKI with `cairn`", "Renewing and revoking with `cairn`"} {
		b := docBlocks(t, title)
		if len(b) == 0 {
			t.Fatalf("no sh block in %q", title)
		}
		blocks = append(blocks, b...)
	}
	t.Chdir(t.TempDir())
	var n int
	for _, b := range blocks {
		for _, line := range strings.Split(b, "\n") {
			line, _, _ = strings.Cut(line, " #")
			args := strings.Fields(line)
			if len(args) == 0 {
				continue
			}
			if args[0] != "cairn" || strings.ContainsAny(line, `'"$|;&<>`) {
				t.Fatalf("%q: a line the test cannot run in-process; keep the cairn blocks to plain cairn commands", line)
			}
			runPKI(t, args[1:]...)
			n++
		}
	}
	data, err := os.ReadFile(filepath.Join("pki", "ca.crl"))
	if err != nil {
		t.Fatal(err)
	}
	lists, err := pki.ParseCRLs(data)
	if err != nil || len(lists) != 1 || len(lists[0].RevokedCertificateEntries) != 1 ||
		lists[0].RevokedCertificateEntries[0].SerialNumber.Cmp(readLeaf(t, filepath.Join("pki", "alice.crt")).SerialNumber) != 0 {
		t.Errorf("pki/ca.crl does not list alice alone (%v)", err)
	}
	if n < 8 {
		t.Errorf("ran %d commands, want the 8 of the two sections", n)
	}
}
