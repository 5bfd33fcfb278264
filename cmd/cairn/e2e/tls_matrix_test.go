package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// TestTLSMatrix is the negative matrix of the client API port and the peer
// port of a running cairn: every kind of connection that must be refused,
// each over a real TCP connection with a real handshake (and, on the client
// port, a real HTTP request when the client's side of the handshake
// completes), is refused without an HTTP answer, and the server logs
// exactly one line for it, naming the reason. (Refusals are logged at most
// twice per port and reason in 10 s; no reason occurs more often here.)
// Authorization is off, as by default: the identity rule applies anyway.
func TestTLSMatrix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	clientURI := func(name string) []*url.URL {
		return []*url.URL{{Scheme: "spiffe", Host: TrustDomain, Path: "/client/" + name}}
	}
	// issueAs issues a certificate with CN cn (none if empty), written
	// under name; without ExtKeyUsage (nil) it has clientAuth.
	issueAs := func(name, cn string, tmpl *x509.Certificate) (tls.Certificate, *x509.Certificate) {
		t.Helper()
		tmpl.Subject = pkix.Name{CommonName: cn}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if tmpl.NotBefore.IsZero() {
			tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		}
		if tmpl.ExtKeyUsage == nil {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		pair := testPKI.IssueTemplate(t, tmpl, certFile, keyFile)
		return pair, pair.Leaf
	}
	issue := func(name string, tmpl *x509.Certificate) (tls.Certificate, *x509.Certificate) {
		t.Helper()
		return issueAs(name, name, tmpl)
	}
	expired, _ := issue("expired", &x509.Certificate{URIs: clientURI("expired"), NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
	notYet, _ := issue("not-yet", &x509.Certificate{URIs: clientURI("not-yet"), NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)})
	serverOnly, _ := issue("server-only", &x509.Certificate{URIs: clientURI("server-only"), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	revoked, revokedLeaf := issue("revoked", &x509.Certificate{URIs: clientURI("revoked")})
	revokedNode, revokedNodeLeaf := issue("revoked-node", &x509.Certificate{
		URIs:        []*url.URL{{Scheme: "spiffe", Host: TrustDomain, Path: "/node/revoked-node"}},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	// Refused by the identity rule whatever the authorization setting
	// (this server has authorization off, the default): a SPIFFE URI of
	// another trust domain, neither CN nor URI SAN, no EKU extension.
	foreignTD, _ := issueAs("foreign-td", "root", &x509.Certificate{URIs: []*url.URL{{Scheme: "spiffe", Host: "evil.example", Path: "/client/root"}}})
	noIdentity, _ := issueAs("no-identity", "", &x509.Certificate{})
	noEKU, _ := issue("no-eku", &x509.Certificate{URIs: clientURI("root"), ExtKeyUsage: []x509.ExtKeyUsage{}})
	crl := filepath.Join(dir, "ca.crl")
	if err := testPKI.WriteCRL(crl, 1, revokedLeaf.SerialNumber, revokedNodeLeaf.SerialNumber); err != nil {
		t.Fatal(err)
	}
	foreign, err := NewPKI(filepath.Join(dir, "foreign"), TrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	foreignPair, err := tls.LoadX509KeyPair(foreign.ClientCert, foreign.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	rootPair, err := tls.LoadX509KeyPair(testPKI.ClientCert, testPKI.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if caPEM, err := os.ReadFile(testPKI.CAFile); err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("read CA: %v", err)
	}

	cfg := &CairnConfig{Bin: needCairn(t), PKI: testPKI, Args: []string{"--crl-file", crl}}
	s := StartCairn(t, cfg)
	clientAddr := strings.TrimPrefix(s.URL, "https://")
	peerAddr := "127.0.0.1:" + strconv.Itoa(cfg.PeerPort)

	// client returns a client configuration presenting certs; min and max
	// are the versions offered (0: Go's defaults).
	client := func(min, max uint16, certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "127.0.0.1", MinVersion: min, MaxVersion: max}
	}
	peer := func(certs ...tls.Certificate) *tls.Config {
		c := client(0, 0, certs...)
		c.NextProtos = []string{tlsconf.PeerALPN}
		return c
	}
	const (
		httpsLine = "client port: refused connection"
		peerLine  = "peer port: refused connection"
	)
	tests := []struct {
		name    string
		addr    string
		attempt func(addr string) attemptResult
		reason  []string // all in the server's one log line; nil: must be accepted, no line
	}{
		{"client port/valid certificate (control)", clientAddr, httpsAttempt(client(0, 0, rootPair)), nil},
		{"client port/no certificate", clientAddr, httpsAttempt(client(0, 0)),
			[]string{httpsLine, "client didn't provide a certificate"}},
		{"client port/certificate from another CA", clientAddr, httpsAttempt(client(0, 0, foreignPair)),
			[]string{httpsLine, "certificate signed by unknown authority"}},
		{"client port/expired certificate", clientAddr, httpsAttempt(client(0, 0, expired)),
			[]string{httpsLine, "certificate has expired or is not yet valid", "is after"}},
		{"client port/certificate not yet valid", clientAddr, httpsAttempt(client(0, 0, notYet)),
			[]string{httpsLine, "certificate has expired or is not yet valid", "is before"}},
		{"client port/revoked certificate (CRL)", clientAddr, httpsAttempt(client(0, 0, revoked)),
			[]string{httpsLine, "certificate revoked", "serial " + pki.SerialHex(revokedLeaf.SerialNumber), crl}},
		{"client port/certificate without clientAuth usage", clientAddr, httpsAttempt(client(0, 0, serverOnly)),
			[]string{httpsLine, "incompatible key usage"}},
		{"client port/SPIFFE URI of another trust domain (auth off)", clientAddr, httpsAttempt(client(0, 0, foreignTD)),
			[]string{httpsLine, "reason=identity", "spiffe://evil.example/client/root is not in trust domain"}},
		{"client port/neither CN nor URI SAN (auth off)", clientAddr, httpsAttempt(client(0, 0, noIdentity)),
			[]string{httpsLine, "reason=identity", "has no identity"}},
		{"client port/no EKU extension (auth off)", clientAddr, httpsAttempt(client(0, 0, noEKU)),
			[]string{httpsLine, "reason=key_usage", "lacks the clientAuth extended key usage"}},
		{"client port/TLS 1.1 client", clientAddr, httpsAttempt(client(tls.VersionTLS10, tls.VersionTLS11, rootPair)),
			[]string{httpsLine, "client offered only unsupported versions"}},
		{"client port/TLS 1.2 client (1.3 is the default minimum)", clientAddr, httpsAttempt(client(0, tls.VersionTLS12, rootPair)),
			[]string{httpsLine, "client offered only unsupported versions"}},
		{"client port/plain HTTP", clientAddr, plainHTTPAttempt,
			[]string{httpsLine, "did not start a TLS handshake (plain HTTP?)"}},
		{"peer port/client certificate", peerAddr, peerAttempt(peer(rootPair)),
			[]string{peerLine, `identity \"client/root\" is not a node`}},
		{"peer port/no certificate", peerAddr, peerAttempt(peer()),
			[]string{peerLine, "client didn't provide a certificate"}},
		{"peer port/node certificate from another CA", peerAddr, peerAttempt(peer(foreignPair)),
			[]string{peerLine, "certificate signed by unknown authority"}},
		{"peer port/revoked node certificate (CRL)", peerAddr, peerAttempt(peer(revokedNode)),
			[]string{peerLine, "certificate revoked", "serial " + pki.SerialHex(revokedNodeLeaf.SerialNumber)}},
		{"peer port/plain HTTP", peerAddr, plainHTTPAttempt,
			[]string{peerLine, "does not look like a TLS handshake"}},
	}
	locals := make([]string, len(tests))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.attempt(tt.addr)
			if r.err != nil {
				t.Fatal(r.err)
			}
			locals[i] = r.local
			if tt.reason == nil {
				if !r.accepted {
					t.Fatalf("refused: %s", r.detail)
				}
				return
			}
			if r.accepted {
				t.Fatalf("accepted: %s", r.detail)
			}
			t.Logf("client: %s", r.detail)
			Poll(t, 5*time.Second, "the server to log the refusal", func() error {
				if len(linesAbout(s.Proc.Output(), r.local)) == 0 {
					return errNotYet
				}
				return nil
			})
			checkRefusalLine(t, s.Proc.Output(), r.local, tt.reason)
		})
	}
	// Once every connection is over, still one line each: nothing logged
	// the same refusal twice, and the control connection logged nothing.
	out := s.Proc.Output()
	for i, tt := range tests {
		if locals[i] == "" {
			continue
		}
		lines := linesAbout(out, locals[i])
		if tt.reason == nil && len(lines) != 0 {
			t.Errorf("%s: the accepted connection was logged: %q", tt.name, lines)
		}
		if tt.reason != nil && len(lines) != 1 {
			t.Errorf("%s: %d lines about %s, want exactly 1: %q", tt.name, len(lines), locals[i], lines)
		}
	}
}

// checkRefusalLine checks that exactly one line of out is about the
// connection from local, and that it holds every reason.
func checkRefusalLine(t *testing.T, out, local string, reason []string) {
	t.Helper()
	lines := linesAbout(out, local)
	if len(lines) != 1 {
		t.Fatalf("%d server log lines about %s, want exactly 1: %q", len(lines), local, lines)
	}
	t.Logf("server: %s", lines[0])
	for _, r := range reason {
		if !strings.Contains(lines[0], r) {
			t.Errorf("the server's line does not say %q:\n%s", r, lines[0])
		}
	}
}

// linesAbout returns the lines of out that mention the address local
// (host:port, not followed by another digit).
func linesAbout(out, local string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		for rest := l; ; {
			i := strings.Index(rest, local)
			if i < 0 {
				break
			}
			rest = rest[i+len(local):]
			if rest == "" || rest[0] < '0' || rest[0] > '9' {
				lines = append(lines, l)
				break
			}
		}
	}
	return lines
}

// attemptResult is the outcome of one connection attempt.
type attemptResult struct {
	local    string // the client's address, as the server sees it
	accepted bool   // the server accepted the client (answered HTTP, or kept the peer connection open)
	detail   string // what the client saw
	err      error  // the attempt itself failed (no connection)
}

const attemptTimeout = 5 * time.Second

// httpsAttempt handshakes with cfg and, if the client's side completes
// (with TLS 1.3 a refused client certificate is only reported afterwards),
// sends GET /health: an HTTP answer means the server accepted the client.
func httpsAttempt(cfg *tls.Config) func(addr string) attemptResult {
	return func(addr string) attemptResult {
		raw, err := net.DialTimeout("tcp", addr, attemptTimeout)
		if err != nil {
			return attemptResult{err: err}
		}
		defer raw.Close()
		r := attemptResult{local: raw.LocalAddr().String()}
		_ = raw.SetDeadline(time.Now().Add(attemptTimeout))
		c := tls.Client(raw, cfg)
		if err := c.Handshake(); err != nil {
			r.detail = "handshake: " + err.Error()
			return r
		}
		if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); err != nil {
			r.detail = "write: " + err.Error()
			return r
		}
		data, err := io.ReadAll(c)
		var ne net.Error
		switch {
		case bytes.HasPrefix(data, []byte("HTTP/")):
			r.accepted, r.detail = true, string(bytes.SplitN(data, []byte("\r\n"), 2)[0])
		case errors.As(err, &ne) && ne.Timeout():
			r.accepted, r.detail = true, "the connection was still open after 5 s, without an answer"
		default:
			r.detail = fmt.Sprintf("read %q: %v", data, err)
		}
		return r
	}
}

// peerAttempt handshakes with cfg and reads without writing: a peer port
// that accepted the client would wait for the protocol byte, and the read
// would time out; a refusal ends the connection at once.
func peerAttempt(cfg *tls.Config) func(addr string) attemptResult {
	return func(addr string) attemptResult {
		raw, err := net.DialTimeout("tcp", addr, attemptTimeout)
		if err != nil {
			return attemptResult{err: err}
		}
		defer raw.Close()
		r := attemptResult{local: raw.LocalAddr().String()}
		_ = raw.SetDeadline(time.Now().Add(3 * time.Second))
		c := tls.Client(raw, cfg)
		if err := c.Handshake(); err != nil {
			r.detail = "handshake: " + err.Error()
			return r
		}
		n, err := c.Read(make([]byte, 512))
		var ne net.Error
		switch {
		case n > 0:
			r.accepted, r.detail = true, "the server sent data"
		case errors.As(err, &ne) && ne.Timeout():
			r.accepted, r.detail = true, "the connection was still open after 3 s"
		default:
			r.detail = "read: " + err.Error()
		}
		return r
	}
}

// plainHTTPAttempt sends a plaintext HTTP request: no HTTP status line may
// come back (Go's http.Server answers "HTTP/1.0 400 Bad Request" to that
// unless the listener refuses first), and the connection must end.
func plainHTTPAttempt(addr string) attemptResult {
	raw, err := net.DialTimeout("tcp", addr, attemptTimeout)
	if err != nil {
		return attemptResult{err: err}
	}
	defer raw.Close()
	r := attemptResult{local: raw.LocalAddr().String()}
	_ = raw.SetDeadline(time.Now().Add(attemptTimeout))
	if _, err := io.WriteString(raw, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		r.detail = "write: " + err.Error()
		return r
	}
	data, err := io.ReadAll(raw)
	var ne net.Error
	switch {
	case bytes.Contains(data, []byte("HTTP/")):
		r.accepted, r.detail = true, fmt.Sprintf("a plaintext request got an HTTP answer: %q", data)
	case errors.As(err, &ne) && ne.Timeout():
		r.accepted, r.detail = true, fmt.Sprintf("the connection was still open after 5 s (read %q)", data)
	default:
		r.detail = fmt.Sprintf("closed after %d bytes (%v)", len(data), err)
	}
	return r
}
