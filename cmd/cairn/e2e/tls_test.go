package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// TestTLS checks that cairn's client and peer ports speak only mutual TLS.
func TestTLS(t *testing.T) {
	t.Parallel()
	bin := needCairn(t)
	cfg := &CairnConfig{Bin: bin, PKI: testPKI}
	s := StartCairn(t, cfg)
	clientAddr := strings.TrimPrefix(s.URL, "https://")
	peerAddr := "127.0.0.1:" + strconv.Itoa(cfg.PeerPort)

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(testPKI.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("read CA: %v", err)
	}
	// A CA of the same trust domain that the cluster does not trust, and
	// a "root" client certificate it issued.
	dir := t.TempDir()
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

	t.Run("valid client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Healthy(ctx); err != nil {
			t.Fatal(err)
		}
		resp, body := s.Get(t, "/v2/keys/", "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v2/keys/: %d %s", resp.StatusCode, body)
		}
		if v := resp.TLS.Version; v != tls.VersionTLS13 {
			t.Errorf("negotiated %s, want TLS 1.3 by default", tls.VersionName(v))
		}
	})

	rejects := []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		{"client certificate from another CA", &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{foreignPair}, MinVersion: tls.VersionTLS12}},
		{"TLS 1.2 only", &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{rootPair}, MaxVersion: tls.VersionTLS12}},
	}
	for _, r := range rejects {
		t.Run("client port/"+r.name, func(t *testing.T) {
			c := NewHTTPClientTLS(r.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v2/keys/", nil)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got HTTP %d; want the TLS handshake to fail", resp.StatusCode)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("request hung instead of failing: %v", err)
			}
			t.Logf("rejected as expected: %v", err)
		})
		t.Run("peer port/"+r.name, func(t *testing.T) {
			needListener(t, peerAddr)
			if err := tlsRejected(peerAddr, r.cfg); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("client port/plain HTTP", func(t *testing.T) { plainHTTPGetsNoHTTP(t, clientAddr) })
	t.Run("peer port/plain HTTP", func(t *testing.T) {
		needListener(t, peerAddr)
		plainHTTPGetsNoHTTP(t, peerAddr)
	})

	t.Run("peer port/client identity", func(t *testing.T) {
		// Only node identities may speak raft: a valid client certificate
		// of the cluster CA must be refused too, at the handshake.
		needListener(t, peerAddr)
		c, err := tlsauth.ClientConfigFromFiles(testPKI.ClientFiles())
		if err != nil {
			t.Fatal(err)
		}
		if err := tlsRejected(peerAddr, c); err != nil {
			t.Fatal(err)
		}
	})
}

// needListener skips the test when nothing listens on addr: a one-node
// cluster may open its peer port only when it has peers.
func needListener(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Skipf("nothing listens on the peer address %s (%v): peer TLS not testable on this node", addr, err)
	}
	c.Close()
}

// tlsRejected dials addr with cfg and reads without writing: the server
// must end the connection (handshake error, TLS alert or EOF) within three
// seconds, without sending data. Nothing is written, so a server that
// accepted the client would just wait, and the read would time out.
func tlsRejected(addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	raw, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(3 * time.Second))
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		return nil // rejected in the handshake (TLS 1.2, or our own check)
	}
	// With TLS 1.3 the server checks the client certificate after the
	// client's side of the handshake is done: the rejection arrives on read.
	n, err := conn.Read(make([]byte, 512))
	var ne net.Error
	switch {
	case err == nil || n > 0:
		return errors.New("the server sent data to an unauthorized client")
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("the server accepted the connection: it was still open after 3 s")
	}
	return nil
}

// plainHTTPGetsNoHTTP sends a plaintext HTTP request to a TLS port: no
// HTTP status line may come back (Go's http.Server answers "HTTP/1.0 400
// Bad Request" to that unless the listener handshakes first).
func plainHTTPGetsNoHTTP(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return // closed at once: fine
	}
	data, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Logf("the port kept a plaintext connection open for 5 s (read %q)", data)
	}
	if bytes.Contains(data, []byte("HTTP/")) {
		t.Errorf("a plaintext request got an HTTP answer: %q", data)
	}
}
