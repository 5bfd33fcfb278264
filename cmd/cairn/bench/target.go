package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Target is a cluster under load: its members' client URLs and the TLS
// configuration that reaches them.
type Target struct {
	// Endpoints are https://host:port URLs; requests go to them in turn.
	Endpoints []string
	// TLS is the client side of mutual TLS (CA and client certificate).
	TLS *tls.Config
	// Timeout bounds one request (default 5s); watches are not bounded.
	Timeout time.Duration
}

// conn is a Target's HTTP client: HTTP/1.1 keep-alive connections, as many
// idle ones per member as there are clients, so that a steady load opens no
// connection after the first round.
type conn struct {
	eps  []string
	hc   *http.Client // bounded by Timeout
	long *http.Client // watches: no timeout but the context's
	tr   *http.Transport
	next atomic.Uint64
}

func (t Target) dial(clients int) (*conn, error) {
	if len(t.Endpoints) == 0 {
		return nil, errors.New("bench: no endpoint: pass --endpoints (or --a and --b to compare)")
	}
	if t.TLS == nil {
		return nil, errors.New("bench: no TLS configuration: Cairn and the etcd endpoints it is compared with take HTTPS with client certificates")
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	tc := t.TLS.Clone()
	tc.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: clients + 1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	eps := make([]string, len(t.Endpoints))
	for i, e := range t.Endpoints {
		eps[i] = strings.TrimSuffix(e, "/")
	}
	return &conn{eps: eps, tr: tr, hc: &http.Client{Transport: tr, Timeout: timeout}, long: &http.Client{Transport: tr}}, nil
}

func (c *conn) close() { c.tr.CloseIdleConnections() }

// endpoint is the next member in turn.
func (c *conn) endpoint() string {
	return c.eps[(c.next.Add(1)-1)%uint64(len(c.eps))]
}

// statusError is an answer with an unexpected status.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.code, e.body)
}

// do sends one request and returns the index the member reported
// (X-Etcd-Index); want lists the statuses that count as success. When out
// is not nil the answer is read into it, else it is discarded.
func (c *conn) do(ctx context.Context, hc *http.Client, method, url string, form []byte, out *bytes.Buffer, want ...int) (uint64, error) {
	var rd io.Reader
	if form != nil {
		rd = bytes.NewReader(form)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	ok := false
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		// Read to the end, so that the connection is used again.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return 0, &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(b))}
	}
	if out != nil {
		out.Reset()
		_, err = out.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return 0, err
	}
	idx, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	return idx, nil
}
