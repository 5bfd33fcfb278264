package server_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// dialTLS opens a TLS connection to the client port with the root client
// certificate, handshake done.
func dialTLS(t *testing.T, s *servertest.Server) *tls.Conn {
	t.Helper()
	conf, err := tlsconf.ClientConfigFromFiles(s.ClientFiles)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", s.ClientAddr(), conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// trickle writes prefix, then one byte of body every tick until a write
// fails or stop is closed.
func trickle(c net.Conn, prefix, body string, stop <-chan struct{}) {
	if _, err := io.WriteString(c, prefix); err != nil {
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(body) {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if _, err := io.WriteString(c, body[i:i+1]); err != nil {
			return
		}
	}
}

// A request body that keeps arriving one byte at a time, or a chunked
// body announcing more than it sends, is cut off at limits.read_timeout:
// the connection is closed, the key is not written. A watch opened before
// it outlives the deadline and still gets its event.
func TestSlowBodyCutOff(t *testing.T) {
	const timeout = 2 * time.Second
	s := servertest.Start(t, func(c *server.Config) { c.ReadHeaderTimeout, c.ReadTimeout = timeout, timeout })

	// The watch starts before any slow body: once a slow body is cut off,
	// the watch's own read deadline, had it one, has passed too.
	resp, err := s.Client.Get(s.URL + "/v2/keys/watched?wait=true&stream=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %s", resp.Status)
	}

	host := s.ClientAddr()
	for _, tc := range []struct{ name, prefix, body string }{
		{"content-length", "PUT /v2/keys/slow HTTP/1.1\r\nHost: " + host +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n", "value=x"},
		{"chunked", "PUT /v2/keys/slow HTTP/1.1\r\nHost: " + host +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n", "value=x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTLS(t, s)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); trickle(c, tc.prefix, tc.body, stop) }()
			t.Cleanup(func() { close(stop); <-done })
			// A safety net for a server that never cuts the body off, not
			// a timing assertion: the deadline under test is far shorter.
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			got, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open a minute after a read timeout of %v; read %q", timeout, got)
			}
			// The answer, when it got through before the close, is etcd's
			// error 210, not a write.
			if len(got) > 0 && (!strings.HasPrefix(string(got), "HTTP/1.1 400") || !strings.Contains(string(got), `"errorCode":210`)) {
				t.Errorf("answer to a slow body:\n%s", got)
			}
		})
	}
	if r, err := s.Client.Get(s.URL + "/v2/keys/slow"); err != nil {
		t.Fatal(err)
	} else if r.Body.Close(); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v2/keys/slow after the cut-off bodies: %s, want 404 (nothing written)", r.Status)
	}

	put(t, s, "/v2/keys/watched", "after")
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"value":"after"`) {
		t.Fatalf("watch after the read timeout: %q, %v", line, err)
	}
}

func put(t *testing.T, s *servertest.Server, path, value string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.URL+path, strings.NewReader(url.Values{"value": {value}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %s", path, resp.Status)
	}
}

// metric is the value of an unlabelled metric on the metrics port.
func metric(t *testing.T, s *servertest.Server, name string) string {
	t.Helper()
	for line := range strings.Lines(mustGet(t, "http://"+s.MetricsAddr()+"/metrics")) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// limits.max_connections: the connection beyond the cap is closed at once
// and counted; a slot freed lets the next one in.
func TestConnectionCap(t *testing.T) {
	const max = 2
	s := servertest.Start(t, func(c *server.Config) { c.MaxConnections = max })
	held := make([]*tls.Conn, max)
	for i := range held {
		held[i] = dialTLS(t, s)
	}
	if got := metric(t, s, "cairn_client_connections"); got != fmt.Sprint(max) {
		t.Errorf("cairn_client_connections %s, want %d", got, max)
	}

	conf, err := tlsconf.ClientConfigFromFiles(s.ClientFiles)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tls.Dial("tcp", s.ClientAddr(), conf); err == nil {
		c.Close()
		t.Fatalf("connection %d of %d completed its handshake", max+1, max)
	}
	if got := metric(t, s, "cairn_client_connections_refused_total"); got != "1" {
		t.Errorf("cairn_client_connections_refused_total %s, want 1", got)
	}

	held[0].Close()
	poll.Until(t, 10*time.Second, "the slot freed", func() bool {
		return metric(t, s, "cairn_client_connections") == fmt.Sprint(max-1)
	})
	c := dialTLS(t, s)
	if _, err := io.WriteString(c, "GET /version HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /version in the freed slot: %s", resp.Status)
	}
}
