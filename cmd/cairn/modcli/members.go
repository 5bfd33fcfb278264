package modcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
)

// Pauses between rounds of a request that members failed: the first, and
// the most (it doubles in between).
const (
	minPause = 200 * time.Millisecond
	maxPause = 2 * time.Second
)

// members sends the module requests to one member at a time, the one that
// answered last, and moves to the next one when it fails. Unlike
// v2client.Client.Do it never sends a request elsewhere by itself: whether
// a 5xx answer is a member's failure or the module's verdict (a timed-out
// acquisition) is for the caller of send to tell, and a blocking request
// must not be queued on every member at once.
type members struct {
	clients []*v2client.Client // one per endpoint, sharing connections
	log     *slog.Logger

	mu  sync.Mutex
	cur int
}

func newMembers(c *v2client.Client, log *slog.Logger) (*members, error) {
	m := &members{log: log}
	for _, ep := range c.Endpoints() {
		one, err := c.WithEndpoints(ep)
		if err != nil {
			return nil, err
		}
		m.clients = append(m.clients, one)
	}
	return m, nil
}

// memberError is a member's failure to answer a request: the request may
// go to another member.
type memberError struct {
	endpoint string
	err      error
}

func (e *memberError) Error() string { return e.err.Error() }
func (e *memberError) Unwrap() error { return e.err }

// send sends req to the current member. A transport error, a 503 (a
// member shutting down), a 429 (too many waits open on it) or a 5xx answer whose body is a JSON error (a
// member without a leader, a failed proposal) is a *memberError, and the
// next send goes to the next member. Any other answer is returned,
// whatever its status: the module answers the end of a wait without the
// lock (timed out, not first with timeout=0, the entry lost meanwhile)
// with a 500 status and a plain-text body.
func (m *members) send(ctx context.Context, req v2client.Request) (*v2client.Response, error) {
	req.Idempotent = true // every module request is safe to repeat (see the callers)
	m.mu.Lock()
	i := m.cur
	m.mu.Unlock()
	c := m.clients[i]
	ep := c.Endpoints()[0]
	resp, err := c.Do(ctx, req)
	if err == nil && (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode >= 500 && isJSON(resp.Body)) {
		err = answerError(resp)
	}
	if err == nil {
		return resp, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	m.moveOn(i, err)
	return nil, &memberError{endpoint: ep, err: err}
}

// moveOn makes the member after member i the one to ask, unless another
// request has moved on already.
func (m *members) moveOn(i int, why error) {
	if len(m.clients) < 2 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == i {
		m.cur = (i + 1) % len(m.clients)
		m.log.Warn("member failed; moving to the next one", "member", m.clients[i].Endpoints()[0], "next", m.clients[m.cur].Endpoints()[0], "error", why)
	}
}

// until sends the request req makes (again for each attempt) until a
// member answers it, pausing between failed attempts, and returns the
// answer or, when ctx ends first, the last member's error. After each
// failure it calls failed (when not nil) before trying the next member.
func (m *members) until(ctx context.Context, req func() v2client.Request, failed func(context.Context)) (*v2client.Response, error) {
	pause := minPause
	for {
		resp, err := m.send(ctx, req())
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if failed != nil {
			failed(ctx)
		}
		if !sleep(ctx, pause) {
			return nil, err
		}
		pause = min(2*pause, maxPause)
	}
}

// isJSON reports whether body is a JSON object: an etcd error or a
// {"message":...}, not the module's plain-text verdict.
func isJSON(body []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))
}

// sleep waits d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// answerError is the error of an answer with a status of 300 or more: an
// etcd error (a *store.Error) or a plain-text verdict.
func answerError(resp *v2client.Response) error {
	if !isJSON(resp.Body) {
		text := string(bytes.TrimSpace(resp.Body))
		if text == "" {
			text = "no reason given"
		}
		return fmt.Errorf("HTTP %d from %s: %s", resp.StatusCode, resp.Endpoint, text)
	}
	return resp.Err()
}

// isMemberError reports whether err is a member's failure (the request
// may go to another member) rather than an answer.
func isMemberError(err error) bool {
	var me *memberError
	return errors.As(err, &me)
}
