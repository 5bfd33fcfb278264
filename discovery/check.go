package discovery

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// Health checks for RegistrarConfig.Check, as Consul's agent runs them: an
// HTTP GET, a TCP connect, or a command. Each returns nil when healthy and
// an error saying what failed otherwise; the registrar bounds each run with
// its CheckTimeout through ctx.

// maxCheckOutput bounds what a check's answer or output contributes to its
// error (and so to the registrar's log).
const maxCheckOutput = 512

// HTTPCheck passes when GET rawURL answers 2xx before ctx ends. It goes to
// the service directly (no proxy) on a new connection each time, and
// verifies https against the system's roots. The error is for a URL that
// is not http:// or https:// with a host.
func HTTPCheck(rawURL string) (func(context.Context) error, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("discovery: HTTP check %q: want an http:// or https:// URL", rawURL)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "cairn-register")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxCheckOutput))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: HTTP %d: %s", rawURL, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil
	}, nil
}

// TCPCheck passes when a TCP connection to addr opens. The error is for
// an addr that is not HOST:PORT.
func TCPCheck(addr string) (func(context.Context) error, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return nil, fmt.Errorf("discovery: TCP check %q: want HOST:PORT", addr)
	}
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}, nil
}

// ExecCheck passes when `sh -c command` exits 0. When ctx ends the shell
// is killed (what it started may outlive it; use exec in the command to
// avoid that). The error ends with the last bytes of the command's output.
func ExecCheck(command string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		out := &tailBuffer{max: maxCheckOutput}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = time.Second // bound the wait for pipes a child holds open
		err := cmd.Run()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if s := strings.TrimSpace(string(out.b)); s != "" {
			return fmt.Errorf("%s: %w: %s", command, err, s)
		}
		return fmt.Errorf("%s: %w", command, err)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}
