package tlsconf_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func leaf(t *testing.T, iss pki.Issued) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(iss.CertPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckServing(t *testing.T) {
	ca := tlstest.NewCA(t)
	node := leaf(t, tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1", "n1.example.net"))
	client := leaf(t, tlstest.IssueClient(t, ca, "app"))
	tests := []struct {
		name     string
		cert     *x509.Certificate
		addr     string
		err      string // substring; "" for none
		warnHost string // host the warning names; "" for no warning
	}{
		{"node, loopback", node, "127.0.0.1:4001", "", ""},
		{"node, its name", node, "n1.example.net:4001", "", ""},
		{"node, another host", node, "10.9.9.9:4001", "", "10.9.9.9"},
		{"node, no host", node, ":4001", "", ""},
		{"client certificate", client, "127.0.0.1:4001", "for clients only", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warn, err := tlsconf.CheckServing(tt.cert, tt.addr)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one saying %q", err, tt.err)
			}
			if (warn != "") != (tt.warnHost != "") || !strings.Contains(warn, tt.warnHost) {
				t.Errorf("warning %q, want one naming %q", warn, tt.warnHost)
			}
		})
	}
}
