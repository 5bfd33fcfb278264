package pki_test

import (
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// readCRLs parses the CRL file path.
func readCRLs(t *testing.T, path string) []*x509.RevocationList {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := pki.ParseCRLs(data)
	if err != nil {
		t.Fatal(err)
	}
	return lists
}

// listed maps the serials of rl to their reason codes.
func listed(rl *x509.RevocationList) map[string]int {
	m := map[string]int{}
	for _, e := range rl.RevokedCertificateEntries {
		m[pki.SerialHex(e.SerialNumber)] = e.ReasonCode
	}
	return m
}

func TestRevoke(t *testing.T) {
	dir := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	ca, err := pki.LoadCA(pki.CAFiles(dir))
	if err != nil {
		t.Fatal(err)
	}
	alice := issueIn(t, dir, tlsauth.KindClient, "alice")
	bob := issueIn(t, dir, tlsauth.KindClient, "bob")
	n1 := issueIn(t, dir, tlsauth.KindNode, "n1", "localhost")
	crl := filepath.Join(dir, "ca.crl")
	hex := func(r *pki.IssueResult) string { return pki.SerialHex(r.Cert.SerialNumber) }

	// Each step runs on the file the steps before it left.
	steps := []struct {
		name    string
		req     pki.RevokeRequest
		number  int64
		listed  map[string]int // serial -> reason: the whole list
		already bool
		created bool
		output  []string
	}{
		{name: "first revocation creates the list", req: pki.RevokeRequest{CertFile: alice.CertFile, Reason: 1},
			number: 1, listed: map[string]int{hex(alice): 1}, created: true,
			output: []string{"Revoked serial " + hex(alice) + " (CN=alice) as of ", "(keyCompromise)", crl + "  CRL created: number 1, 1 revoked"}},
		{name: "by serial, earlier entries kept", req: pki.RevokeRequest{Serial: bob.Cert.SerialNumber, Reason: 4},
			number: 2, listed: map[string]int{hex(alice): 1, hex(bob): 4},
			output: []string{"Revoked serial " + hex(bob) + " as of", "(superseded)", "CRL updated: number 2, 2 revoked"}},
		{name: "again: kept as it was, list signed again", req: pki.RevokeRequest{CertFile: alice.CertFile, Reason: 5},
			number: 3, listed: map[string]int{hex(alice): 1, hex(bob): 4}, already: true,
			output: []string{"Already revoked: serial " + hex(alice), "(keyCompromise); the CRL is signed again", "number 3, 2 revoked"}},
		{name: "a node", req: pki.RevokeRequest{CertFile: n1.CertFile},
			number: 4, listed: map[string]int{hex(alice): 1, hex(bob): 4, hex(n1): 0},
			output: []string{"(unspecified)"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.req.CADir = dir
			r, err := pki.Revoke(s.req)
			if err != nil {
				t.Fatal(err)
			}
			if r.Already != s.already || r.Created != s.created || r.CRLFile != crl {
				t.Errorf("already %v created %v file %s", r.Already, r.Created, r.CRLFile)
			}
			assertMode(t, crl, 0o644)
			assertNoTempFiles(t, dir)
			lists := readCRLs(t, crl)
			if len(lists) != 1 {
				t.Fatalf("%d lists in the file", len(lists))
			}
			rl := lists[0]
			if err := rl.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("signature: %v", err)
			}
			if rl.Number.Cmp(big.NewInt(s.number)) != 0 {
				t.Errorf("CRL number %v, want %d", rl.Number, s.number)
			}
			if got := listed(rl); len(got) != len(s.listed) {
				t.Errorf("listed %v, want %v", got, s.listed)
			} else {
				for k, v := range s.listed {
					if got[k] != v {
						t.Errorf("listed %v, want %v", got, s.listed)
					}
				}
			}
			if d := time.Until(rl.NextUpdate) - pki.DefaultCRLValidity; d > time.Minute || d < -time.Minute {
				t.Errorf("next update in %v", time.Until(rl.NextUpdate))
			}
			var out strings.Builder
			if err := r.Write(&out); err != nil {
				t.Fatal(err)
			}
			for _, w := range s.output {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestRevokeKeepsOtherLists: a CRL file shared by several CAs keeps the
// lists of the others.
func TestRevokeKeepsOtherLists(t *testing.T) {
	dir := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	other := tlstest.NewCA(t)
	crl := filepath.Join(t.TempDir(), "all.crl")
	theirs, err := other.RevocationList(7, []*big.Int{big.NewInt(99)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlstest.WriteFile(t, crl, string(theirs), 0o644)
	alice := issueIn(t, dir, tlsauth.KindClient, "alice")
	r, err := pki.Revoke(pki.RevokeRequest{CADir: dir, CertFile: alice.CertFile, CRLFile: crl, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r.Created || r.Number.Int64() != 1 {
		t.Errorf("created %v number %v", r.Created, r.Number)
	}
	lists := readCRLs(t, crl)
	if len(lists) != 2 || lists[1].Number.Int64() != 7 || lists[1].CheckSignatureFrom(other.Cert) != nil {
		t.Fatalf("the other CA's list was not kept: %d lists", len(lists))
	}
	if d := time.Until(lists[0].NextUpdate) - time.Hour; d > time.Minute || d < -time.Minute {
		t.Errorf("next update in %v, want an hour", time.Until(lists[0].NextUpdate))
	}
}

func TestRevokeRefuses(t *testing.T) {
	dir := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	other := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	mallory := issueIn(t, other, tlsauth.KindClient, "mallory")
	alice := issueIn(t, dir, tlsauth.KindClient, "alice")
	garbage := filepath.Join(t.TempDir(), "garbage.crl")
	tlstest.WriteFile(t, garbage, "not a CRL", 0o644)
	tests := []struct {
		name string
		req  pki.RevokeRequest
		want error
		msg  string
	}{
		{"another CA's certificate", pki.RevokeRequest{CertFile: mallory.CertFile}, pki.ErrNotIssuedHere, "only the CA that issued a certificate can revoke it"},
		{"both certificate and serial", pki.RevokeRequest{CertFile: alice.CertFile, Serial: big.NewInt(1)}, nil, "one of them"},
		{"neither", pki.RevokeRequest{}, nil, "one of them"},
		{"a file that is no CRL", pki.RevokeRequest{CertFile: alice.CertFile, CRLFile: garbage}, pki.ErrNoCRL, garbage},
		{"no directory for the CRL", pki.RevokeRequest{CertFile: alice.CertFile, CRLFile: filepath.Join(dir, "missing", "ca.crl")}, os.ErrNotExist, "missing"},
		{"negative validity", pki.RevokeRequest{CertFile: alice.CertFile, Validity: -time.Hour}, pki.ErrValidity, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dirContents(t, dir)
			tt.req.CADir = dir
			_, err := pki.Revoke(tt.req)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.want, tt.msg)
			}
			if after := dirContents(t, dir); len(after) != len(before) {
				t.Error("a refused revocation left files behind")
			}
		})
	}
}

func TestParseSerialAndReason(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64 // 0: an error
	}{
		{"5A:0F", 0x5a0f}, {"5a0f", 0x5a0f}, {"0x5A0F", 0x5a0f}, {" 01 ", 1},
		{"", 0}, {"0", 0}, {"xyz", 0}, {"-5", 0},
	} {
		n, err := pki.ParseSerial(tt.in)
		if (tt.want == 0) != (err != nil) || (err == nil && n.Int64() != tt.want) {
			t.Errorf("ParseSerial(%q) = %v, %v; want %d", tt.in, n, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in   string
		want int // -1: an error
	}{
		{"", 0}, {"unspecified", 0}, {"keyCompromise", 1}, {"KEYCOMPROMISE", 1}, {"superseded", 4}, {"AACompromise", 10},
		{"removeFromCRL", -1}, {"stolen", -1},
	} {
		code, err := pki.ParseReason(tt.in)
		if (tt.want < 0) != (err != nil) || (err == nil && code != tt.want) {
			t.Errorf("ParseReason(%q) = %d, %v; want %d", tt.in, code, err, tt.want)
		}
	}
}

// TestRevokedRefusedAfterReload: a server that loaded the CRL file refuses
// a certificate revoked afterwards as soon as it reloads the file, and
// keeps refusing the ones revoked before.
func TestRevokedRefusedAfterReload(t *testing.T) {
	dir := caDir(t, tlstest.TrustDomain, 24*time.Hour)
	caFile, _ := pki.CAFiles(dir)
	node := issueIn(t, dir, tlsauth.KindNode, "n1", "localhost", "127.0.0.1")
	alice := issueIn(t, dir, tlsauth.KindClient, "alice")
	bob := issueIn(t, dir, tlsauth.KindClient, "bob")
	crl := filepath.Join(dir, "ca.crl")
	if _, err := pki.Revoke(pki.RevokeRequest{CADir: dir, CertFile: alice.CertFile}); err != nil {
		t.Fatal(err)
	}
	server, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: caFile, CertFile: node.CertFile, KeyFile: node.KeyFile, CRLFile: crl})
	if err != nil {
		t.Fatal(err)
	}
	reloader := tlsconf.NewReloader(nil)
	reloader.Add("client port", server)
	client := func(r *pki.IssueResult) *tlsconf.Material {
		m, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: caFile, CertFile: r.CertFile, KeyFile: r.KeyFile})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	handshake := func(r *pki.IssueResult) error {
		return tlstest.Handshake(t, server.ServerConfig(tlsconf.Options{}), client(r).ClientConfig(tlsconf.Options{})).ServerErr
	}
	if err := handshake(bob); err != nil {
		t.Fatalf("bob before his revocation: %v", err)
	}
	if err := handshake(alice); !errors.Is(err, tlsconf.ErrRevoked) {
		t.Fatalf("alice: %v, want ErrRevoked", err)
	}
	if _, err := pki.Revoke(pki.RevokeRequest{CADir: dir, CertFile: bob.CertFile}); err != nil {
		t.Fatal(err)
	}
	if err := handshake(bob); err != nil {
		t.Fatalf("bob before the reload: %v (the material in use changes only by a reload)", err)
	}
	if err := reloader.Check("test"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, r := range []*pki.IssueResult{alice, bob} {
		if err := handshake(r); !errors.Is(err, tlsconf.ErrRevoked) {
			t.Errorf("%s after the reload: %v, want ErrRevoked", r.Name, err)
		}
	}
}

func TestRevocationListErrors(t *testing.T) {
	ca := tlstest.NewCA(t)
	if _, err := ca.RevocationList(1, nil, 0); !errors.Is(err, pki.ErrValidity) {
		t.Errorf("zero validity: %v, want ErrValidity", err)
	}
	if got := pki.SerialHex(big.NewInt(0xabc)); got != "0ABC" {
		t.Errorf("SerialHex = %q, want 0ABC", got)
	}
}
