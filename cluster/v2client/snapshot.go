package v2client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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

// SaveOptions configure SaveSnapshot.
type SaveOptions struct {
	// Progress, when not nil, receives a copy of the backup as it arrives.
	Progress io.Writer
	// Verify checks the complete download, at the path it was written to,
	// before it is renamed into place (cmd gives cluster's check of the
	// backup format); nil: no check.
	Verify func(path string) error
}

// SaveError is a backup that SaveSnapshot received but did not save.
type SaveError struct {
	Bytes int64 // bytes received
	// Unusable: the download completed, but Verify refused it; else it was
	// cut.
	Unusable bool
	Err      error
}

func (e *SaveError) Error() string {
	if e.Unusable {
		return fmt.Sprintf("not a usable backup: %v", e.Err)
	}
	return fmt.Sprintf("download cut after %d bytes: %v", e.Bytes, e.Err)
}

func (e *SaveError) Unwrap() error { return e.Err }

// SaveSnapshot writes a backup being downloaded (the body of Snapshot)
// into file, durably and never partly, as etcd's snapshot save does: into
// file.part (mode 0600), synced, checked with o.Verify, then renamed to
// file and the directory synced. On any error file.part is removed and
// file is left as it was. It returns the bytes received; a cut or
// unusable download is a *SaveError, any other error names the file that
// could not be written.
func SaveSnapshot(body io.Reader, file string, o SaveOptions) (n int64, err error) {
	part := file + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", part, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(part)
		}
	}()
	var w io.Writer = f
	if o.Progress != nil {
		w = io.MultiWriter(f, o.Progress)
	}
	if n, err = io.Copy(w, body); err != nil {
		return n, &SaveError{Bytes: n, Err: err}
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("sync %s: %w", part, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("write %s: %w", part, err)
	}
	if o.Verify != nil {
		if err := o.Verify(part); err != nil {
			return n, &SaveError{Bytes: n, Unusable: true, Err: err}
		}
	}
	if err := os.Rename(part, file); err != nil {
		return n, fmt.Errorf("rename %s to %s: %w", part, file, err)
	}
	if err := syncDir(filepath.Dir(file)); err != nil {
		return n, fmt.Errorf("sync the directory of %s: %w", file, err)
	}
	return n, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
