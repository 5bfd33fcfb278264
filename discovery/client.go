package discovery

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxAnswerBytes bounds an answer read into memory. The registrar's answers
// are one node each: a record and its metadata.
const maxAnswerBytes = 1 << 20

// keysClient is the registrar's etcd v2 client: key writes over mutual TLS
// to a list of members, failing over between them. Every member serves
// every request (followers forward writes), so any member will do; the one
// that answered last is asked first.
//
// An endpoint is skipped on a connection error, a timeout or a 5xx answer
// (etcd error 300 or 301: no leader, raft trouble); any other answer is the
// cluster's verdict. Resending is safe for the registrar's requests: a set
// of the same value, a refresh and a compare-and-delete mean the same thing
// twice.
type keysClient struct {
	endpoints []string
	timeout   time.Duration // per attempt, connection included
	hc        *http.Client
	tr        *http.Transport

	mu  sync.Mutex
	cur int // index of the endpoint that answered last
}

func newKeysClient(endpoints []string, tc *tls.Config, timeout time.Duration) *keysClient {
	tc = tc.Clone()
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &keysClient{endpoints: endpoints, timeout: timeout, hc: &http.Client{Transport: tr}, tr: tr}
}

// close drops idle connections.
func (c *keysClient) close() { c.tr.CloseIdleConnections() }

// keysAnswer is a member's answer to a keys request.
type keysAnswer struct {
	Status   int    // HTTP status
	Endpoint string // the member that answered
	// Skipped are the members tried first that did not answer, each with why.
	Skipped []string

	// Node is the node of a 2xx answer.
	Node struct {
		Key           string `json:"key"`
		Value         string `json:"value"`
		ModifiedIndex uint64 `json:"modifiedIndex"`
	}
	// ErrorCode, Message and Cause are the etcd error of an answer that is
	// not 2xx (ErrorCode 0 when the body was not one).
	ErrorCode      int
	Message, Cause string
	body           string
}

// ok reports a 2xx answer.
func (a *keysAnswer) ok() bool { return a.Status/100 == 2 }

// err describes an answer that is not 2xx.
func (a *keysAnswer) err() error {
	if a.ErrorCode != 0 {
		msg := fmt.Sprintf("etcd error %d: %s", a.ErrorCode, a.Message)
		if a.Cause != "" {
			msg += " (" + a.Cause + ")"
		}
		return fmt.Errorf("%s from %s (HTTP %d)", msg, a.Endpoint, a.Status)
	}
	return fmt.Errorf("HTTP %d from %s: %s", a.Status, a.Endpoint, a.body)
}

// errUnavailable is the error when no member answered.
var errUnavailable = errors.New("discovery: no cluster member answered")

// do sends method on /v2/keys<key> with query q and, if form is not nil, the
// urlencoded body form, to the members in turn, starting with the one that
// answered last, until one answers. It fails with an error wrapping
// errUnavailable when none does, or ctx's error when ctx ends.
func (c *keysClient) do(ctx context.Context, method, key string, q, form url.Values) (*keysAnswer, error) {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var skipped []string
	for k := range c.endpoints {
		i := (start + k) % len(c.endpoints)
		ep := c.endpoints[i]
		a, err := c.try(ctx, ep, method, key, q, form)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil && a.Status < 500 {
			c.mu.Lock()
			c.cur = i
			c.mu.Unlock()
			a.Skipped = skipped
			return a, nil
		}
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = a.err().Error()
		}
		skipped = append(skipped, ep+": "+why)
	}
	return nil, fmt.Errorf("%w: %s", errUnavailable, strings.Join(skipped, "; "))
}

// try is one attempt on endpoint ep.
func (c *keysClient) try(ctx context.Context, ep, method, key string, q, form url.Values) (*keysAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := ep + (&url.URL{Path: "/v2/keys" + key}).EscapedPath()
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the endpoint is named by the caller
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("no answer within %v", c.timeout)
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(b) > maxAnswerBytes {
		return nil, fmt.Errorf("the answer is over %d bytes", maxAnswerBytes)
	}
	a := &keysAnswer{Status: resp.StatusCode, Endpoint: ep}
	if a.ok() {
		var ev struct {
			Node *json.RawMessage `json:"node"`
		}
		if err := json.Unmarshal(b, &ev); err != nil || ev.Node == nil {
			return nil, fmt.Errorf("HTTP %d with an answer that is not an etcd event: %.200q", resp.StatusCode, b)
		}
		if err := json.Unmarshal(*ev.Node, &a.Node); err != nil {
			return nil, fmt.Errorf("HTTP %d with a node that does not decode: %w", resp.StatusCode, err)
		}
		return a, nil
	}
	var e struct {
		ErrorCode int    `json:"errorCode"`
		Message   string `json:"message"`
		Cause     string `json:"cause"`
	}
	if json.Unmarshal(b, &e) == nil && e.ErrorCode != 0 {
		a.ErrorCode, a.Message, a.Cause = e.ErrorCode, e.Message, e.Cause
	} else {
		a.body = strings.TrimSpace(string(b))
		if len(a.body) > 200 {
			a.body = a.body[:200] + "…"
		}
		if a.body == "" {
			a.body = http.StatusText(resp.StatusCode)
		}
	}
	return a, nil
}
