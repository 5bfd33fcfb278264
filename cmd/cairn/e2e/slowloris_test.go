package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// TestSlowloris: a client trickling a request's headers is cut off once
// limits.read_header_timeout has passed, although it never stops sending;
// a watch that has waited longer than that without any traffic is not.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	s := StartCairn(t, &CairnConfig{Bin: needCairn(t), PKI: testPKI, Args: []string{"--read-header-timeout", timeout.String()}})

	// A long poll: its headers are in at once, then nothing moves until
	// the key is written.
	type answer struct {
		status int
		body   string
		err    error
	}
	watch := make(chan answer, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		resp, body, err := s.Do(ctx, http.MethodGet, "/v2/keys/slowloris", "wait=true", "")
		if err != nil {
			watch <- answer{err: err}
			return
		}
		watch <- answer{status: resp.StatusCode, body: string(body)}
	}()

	// The slow client: a valid certificate, then one header line every
	// 100 ms, never the blank line that ends the headers. The ticker paces
	// the attack (a workload); what the test waits for is the cut.
	cfg, err := tlsconf.ClientConfigFromFiles(testPKI.ClientFiles())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		closed <- err
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lines := 0
	var cutAfter time.Duration
trickle:
	for {
		select {
		case err := <-closed:
			cutAfter = time.Since(start)
			t.Logf("cut off after %v and %d header lines (read: %v)", cutAfter.Round(time.Millisecond), lines, err)
			break trickle
		case <-tick.C:
			if time.Since(start) > timeout+10*time.Second {
				t.Fatalf("still connected after %v of trickling headers", time.Since(start))
			}
			if _, err := fmt.Fprintf(conn, "X-Slow-%d: x\r\n", lines); err != nil {
				// The server is gone: the reader sees it too.
				continue
			}
			lines++
		}
	}
	if cutAfter < timeout*9/10 {
		t.Errorf("cut off after %v, before the %v header timeout", cutAfter, timeout)
	}
	if lines < 5 {
		t.Errorf("only %d header lines were sent: the client was not trickling", lines)
	}

	// The watch, idle all that time, is still waiting; a write ends it.
	select {
	case a := <-watch:
		t.Fatalf("the watch ended after %v without an event: %+v", time.Since(start), a)
	default:
	}
	if resp, body := s.Put(t, "/v2/keys/slowloris", "", "value=v"); resp.StatusCode/100 != 2 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	select {
	case a := <-watch:
		if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"action":"set"`) {
			t.Fatalf("watch answer: %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch got no event within 5 s of the write")
	}
}
