package tlsconf_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// TestClientIdentityRule: the client port's ServerConfig refuses, at the
// handshake, every certificate the identity rule refuses, whatever the
// authorization setting (ServerConfig knows none).
func TestClientIdentityRule(t *testing.T) {
	p := tlstest.NewPKI(t)
	pool := p.NodeMaterial.Pool()
	now := time.Now()
	cert := func(cn string, uri string, eku ...x509.ExtKeyUsage) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku}
		if uri != "" {
			u, err := url.Parse(uri)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = []*url.URL{u}
		}
		return c
	}
	clientAuth := x509.ExtKeyUsageClientAuth
	tests := []struct {
		name    string
		tmpl    *x509.Certificate
		want    tlsauth.Identity
		wantErr error
		reason  string
	}{
		{"SPIFFE client in the trust domain", cert("", "spiffe://"+tlstest.TrustDomain+"/client/bob", clientAuth), tlsauth.Identity{Name: "bob", Kind: tlsauth.KindClient}, nil, ""},
		{"CN only", cert("carol", "", clientAuth), tlsauth.Identity{Name: "carol", Kind: tlsauth.KindCN}, nil, ""},
		{"foreign trust domain", cert("root", "spiffe://evil.example/client/root", clientAuth), tlsauth.Identity{}, tlsauth.ErrForeignTrustDomain, tlsconf.ReasonIdentity},
		{"no CN, no URI SAN", cert("", "", clientAuth), tlsauth.Identity{}, tlsauth.ErrNoIdentity, tlsconf.ReasonIdentity},
		{"no EKU extension", cert("root", "spiffe://"+tlstest.TrustDomain+"/client/root"), tlsauth.Identity{}, tlsauth.ErrNoClientAuth, tlsconf.ReasonKeyUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := tlstest.Sign(t, p.CA, tt.tmpl)
			id, err := tlsauth.ClientIdentity(leaf.Leaf, tlstest.TrustDomain)
			if !errors.Is(err, tt.wantErr) || id != tt.want {
				t.Fatalf("ClientIdentity = %v, %v; want %v, %v", id, err, tt.want, tt.wantErr)
			}
			r := tlstest.Handshake(t, p.NodeServer, tlstest.ClientConfig(pool, leaf))
			if tt.wantErr == nil {
				if r.ServerErr != nil || r.ClientErr != nil {
					t.Fatalf("refused: server %v, client %v", r.ServerErr, r.ClientErr)
				}
				return
			}
			if !errors.Is(r.ServerErr, tt.wantErr) {
				t.Fatalf("server error %v, want %v", r.ServerErr, tt.wantErr)
			}
			if r.ClientErr == nil {
				t.Fatal("the client was not told of the refusal")
			}
			// Classified the same from the error and from net/http's text of it.
			if got := tlsconf.HandshakeReason(r.ServerErr); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if got := tlsconf.HandshakeReason(errors.New(r.ServerErr.Error())); got != tt.reason {
				t.Errorf("reason from text %q, want %q", got, tt.reason)
			}
		})
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestHandshakeLogBounded: 100 refused handshakes count 100 and log at most
// Burst lines per window; the next window's first line says how many were
// suppressed.
func TestHandshakeLogBounded(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	counts := map[string]int{}
	h := &tlsconf.HandshakeLog{
		Logger: slog.New(slog.NewTextHandler(&buf, nil)),
		Count:  func(port, reason string) { counts[port+"/"+reason]++ },
		Now:    clock.now,
	}
	// Through net/http's ErrorLog, as the client port's server writes it.
	errLog := log.New(h.HTTPErrorLog(slog.New(slog.NewTextHandler(&buf, nil))), "", 0)
	for i := range 100 {
		errLog.Printf("http: TLS handshake error from 127.0.0.1:%d: tls: failed to verify certificate: x509: certificate signed by unknown authority", 40000+i)
		clock.t = clock.t.Add(10 * time.Millisecond) // 1 s in all: one window
	}
	if got := counts["client/"+tlsconf.ReasonUnknownCA]; got != 100 || len(counts) != 1 {
		t.Fatalf("counts %v, want client/unknown_ca: 100", counts)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) > 2 {
		t.Fatalf("%d lines for 100 refusals, want at most 2:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "client port: refused connection") || !strings.Contains(l, "reason=unknown_ca") || !strings.Contains(l, "unknown authority") {
			t.Errorf("line does not name the port, reason and error: %s", l)
		}
	}

	// Another reason has its own budget; a line of another kind passes through.
	buf.Reset()
	h.Refused("peer", "127.0.0.1:1", errors.New("tls: client didn't provide a certificate"))
	errLog.Print("http: some other problem")
	if !strings.Contains(buf.String(), "reason=no_certificate") || !strings.Contains(buf.String(), "some other problem") {
		t.Fatalf("want the peer line and the passed-through line:\n%s", buf.String())
	}

	// The next window logs again and reports what was suppressed.
	buf.Reset()
	clock.t = clock.t.Add(10 * time.Second)
	errLog.Print("http: TLS handshake error from 127.0.0.1:50000: tls: failed to verify certificate: x509: certificate signed by unknown authority")
	if !strings.Contains(buf.String(), "suppressed=98") {
		t.Fatalf("want suppressed=98:\n%s", buf.String())
	}
}
