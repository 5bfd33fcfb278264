package v2client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cairnkv/cairn/store"
)

// WatchOptions are the parameters of a watch.
type WatchOptions struct {
	// AfterIndex: the first change reported is the first one after this
	// store index (history replays what came since); 0 is "from now".
	AfterIndex uint64
	// Recursive watches the key and every key under it.
	Recursive bool
	// Stream keeps one connection open for every change (stream=true)
	// instead of asking again after each one.
	Stream bool
}

// Watcher reports the changes of a key, in order, none missed or twice:
// each change moves the wait index past it. It is not safe for concurrent
// use.
type Watcher struct {
	c         *Client
	key       string
	o         WatchOptions
	waitIndex uint64
	ep        int // the endpoint asked
	endpoint  string

	stream *bufio.Reader // the open stream, when Stream
	body   io.ReadCloser
	cancel context.CancelFunc
}

// Watch returns a watcher of key; Next waits for its changes.
func (c *Client) Watch(key string, o WatchOptions) *Watcher {
	w := &Watcher{c: c, key: key, o: o}
	if o.AfterIndex > 0 {
		w.waitIndex = o.AfterIndex + 1
	}
	c.mu.Lock()
	w.ep = c.cur
	c.mu.Unlock()
	return w
}

// Endpoint is the endpoint of the last answer.
func (w *Watcher) Endpoint() string { return w.endpoint }

// WaitIndex is the store index the next poll waits for: the first change
// Next may report (0: from now).
func (w *Watcher) WaitIndex() uint64 { return w.waitIndex }

// Resume moves the watch to the changes after index, e.g. after error 401
// (the event index has left the member's history).
func (w *Watcher) Resume(afterIndex uint64) {
	w.closeStream()
	w.waitIndex = afterIndex + 1
}

// Close ends an open stream.
func (w *Watcher) Close() { w.closeStream() }

func (w *Watcher) closeStream() {
	if w.body != nil {
		w.body.Close()
		w.cancel()
		w.body, w.stream, w.cancel = nil, nil, nil
	}
}

// Next waits for the next change and returns it. Only the answer's headers
// must come within the client's timeout: the change may take forever. A
// connection that fails moves the watch to the next endpoint, from the
// same index; when every endpoint failed in a row, Next returns an error
// wrapping ErrUnavailable. An etcd error (such as 401, event index
// cleared) is returned as a *store.Error; the watch may go on after
// Resume. When ctx ends, Next returns ctx's error.
func (w *Watcher) Next(ctx context.Context) (*store.Event, error) {
	var failed []string
	var errs []error
	eps := w.c.endpoints
	for {
		if w.stream != nil {
			ev, err := w.readStream()
			if ev != nil {
				return w.got(ev), nil
			}
			w.closeStream()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil && !errors.Is(err, io.EOF) {
				failed = append(failed, eps[w.ep]+": the stream broke off: "+err.Error())
				errs = append(errs, err)
				w.ep = (w.ep + 1) % len(eps)
			}
			// A stream that ended cleanly: ask again.
			continue
		}
		ev, err := w.poll(ctx, eps[w.ep])
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var se *store.Error
		switch {
		case errors.As(err, &se):
			return nil, err
		case err != nil:
			failed = append(failed, eps[w.ep]+": "+err.Error())
			errs = append(errs, err)
			if len(failed) >= len(eps) {
				return nil, &UnavailableError{Reasons: failed, errs: errs}
			}
			w.ep = (w.ep + 1) % len(eps)
			continue
		}
		failed, errs = nil, nil
		if ev == nil {
			continue // no change, or a stream was opened: ask again
		}
		return w.got(ev), nil
	}
}

func (w *Watcher) got(ev *store.Event) *store.Event {
	if ev.Node != nil {
		w.waitIndex = ev.Node.ModifiedIndex + 1
	}
	return ev
}

// poll is one long poll on ep: an event, nil for an answer without one
// (the member ended the watch, or a stream is now open), or an error.
func (w *Watcher) poll(ctx context.Context, ep string) (*store.Event, error) {
	q := url.Values{"wait": {"true"}}
	if w.waitIndex > 0 {
		q.Set("waitIndex", strconv.FormatUint(w.waitIndex, 10))
	}
	flag(q, "recursive", w.o.Recursive)
	flag(q, "stream", w.o.Stream)
	pollCtx, cancel := context.WithCancel(ctx)
	headers := time.AfterFunc(w.c.cfg.Timeout, cancel)
	hr, _, err := w.c.newRequest(pollCtx, ep, Request{Method: http.MethodGet, Path: keysURI(w.key, q)})
	if err != nil {
		cancel()
		return nil, err
	}
	hresp, err := w.c.hc.Do(hr)
	if !headers.Stop() {
		if err == nil {
			hresp.Body.Close()
		}
		cancel()
		return nil, kinded([]error{ErrTimeout}, "no answer within %v", w.c.cfg.Timeout)
	}
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, w.c.explain(ctx, ep, err)
	}
	w.endpoint = ep
	if hresp.StatusCode == http.StatusOK && w.o.Stream {
		w.body, w.cancel = hresp.Body, cancel
		w.stream = bufio.NewReaderSize(hresp.Body, 64<<10)
		return nil, nil
	}
	defer cancel()
	defer hresp.Body.Close()
	b, err := w.c.readAll(hresp.Body)
	if err != nil {
		return nil, fmt.Errorf("the watch broke off: %w", err)
	}
	resp := &Response{StatusCode: hresp.StatusCode, Header: hresp.Header, Body: b, Endpoint: ep}
	if resp.StatusCode == http.StatusOK && len(bytes.TrimSpace(b)) == 0 {
		// etcd's clients read an empty 200 as "ask again".
		return nil, nil
	}
	ev, err := decodeEvent(resp)
	if err != nil && resp.StatusCode >= 500 {
		var se *store.Error
		if !errors.As(err, &se) {
			return nil, err // not the cluster's verdict: try another member
		}
	}
	return ev, err
}

// readStream reads the next event of an open stream: nil and an error
// (io.EOF included) when the stream ended.
func (w *Watcher) readStream() (*store.Event, error) {
	for {
		line, err := w.readLine()
		if len(bytes.TrimSpace(line)) > 0 {
			ev := new(store.Event)
			if jerr := json.Unmarshal(line, ev); jerr != nil || ev.Node == nil {
				return nil, fmt.Errorf("a stream line that is not an event: %.200q", line)
			}
			return ev, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// readLine reads one line of the stream, within the size bound.
func (w *Watcher) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := w.stream.ReadSlice('\n')
		line = append(line, chunk...)
		if int64(len(line)) > w.c.cfg.MaxResponseBytes {
			return nil, fmt.Errorf("an event larger than %d bytes", w.c.cfg.MaxResponseBytes)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}
