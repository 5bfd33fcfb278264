package v2client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// SnapshotPath is the API path of a backup download.
const SnapshotPath = "/cairn/v1/snapshot"

// Snapshot starts downloading a consistent backup (GET SnapshotPath) from
// the first endpoint that answers and returns its body and that endpoint;
// any other answer than 200 is its error. The client's timeout bounds the
// wait for the answer and then any pause of the body, not the whole
// transfer. The caller closes the body.
func (c *Client) Snapshot(ctx context.Context) (io.ReadCloser, string, error) {
	var reasons []string
	var errs []error
	for _, ep := range c.endpoints {
		rctx, cancel := context.WithCancel(ctx)
		stalled := &atomic.Bool{}
		timer := time.AfterFunc(c.cfg.Timeout, func() { stalled.Store(true); cancel() })
		hr, _, err := c.newRequest(rctx, ep, Request{Method: http.MethodGet, Path: SnapshotPath})
		if err != nil {
			timer.Stop()
			cancel()
			return nil, "", err
		}
		resp, err := c.hc.Do(hr)
		if err != nil {
			timer.Stop()
			cancel()
			switch {
			case stalled.Load():
				err = kinded([]error{ErrTimeout}, "no answer within %v", c.cfg.Timeout)
			case ctx.Err() != nil:
				return nil, "", fmt.Errorf("GET %s: %w", ep+SnapshotPath, ctx.Err())
			default:
				err = c.explain(ctx, ep, err)
			}
			reasons = append(reasons, ep+": "+err.Error())
			errs = append(errs, err)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			timer.Stop()
			cancel()
			return nil, ep, responseError(&Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: b, Endpoint: ep})
		}
		return &stallReader{rc: resp.Body, timer: timer, d: c.cfg.Timeout, stalled: stalled, cancel: cancel}, ep, nil
	}
	return nil, "", &UnavailableError{Reasons: reasons, errs: errs}
}

// stallReader is a response body whose request is cancelled when no byte
// arrives for d.
type stallReader struct {
	rc      io.ReadCloser
	timer   *time.Timer
	d       time.Duration
	stalled *atomic.Bool
	cancel  context.CancelFunc
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	// Once cancelled, the transport may end the body with io.EOF as well
	// as with an error: either way the download stalled.
	if err != nil && s.stalled.Load() {
		err = kinded([]error{ErrTimeout}, "no data for %v", s.d)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	s.cancel()
	return s.rc.Close()
}
