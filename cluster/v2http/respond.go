package v2http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cairnkv/cairn/store"
)

// statusWriter records the status of a response for metrics and whether the
// request turned out to be a watch. It unwraps for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code  int
	watch bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// markWatch labels the request a watch, whose duration is not a latency.
func markWatch(w http.ResponseWriter) {
	if sw, ok := w.(*statusWriter); ok {
		sw.watch = true
	}
}

// unwrap returns the server's own writer, which http.MaxBytesReader needs
// to close the connection after an oversized body.
func unwrap(w http.ResponseWriter) http.ResponseWriter {
	if sw, ok := w.(*statusWriter); ok {
		return sw.ResponseWriter
	}
	return w
}

// allowMethod is etcd's: a method not in ms is answered 405 with
// "Allow: <ms joined by ','>" (no space, etcd's formatting).
func allowMethod(w http.ResponseWriter, m string, ms ...string) bool {
	for _, meth := range ms {
		if m == meth {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeJSON is json.NewEncoder(buf).Encode(v): HTML-escaped, with etcd
// 2.x's trailing newline. Return the buffer with putBuf. Encoding fails only
// for values JSON cannot express (a time past year 9999).
func encodeJSON(v any) (*bytes.Buffer, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		putBuf(buf)
		return nil, fmt.Errorf("v2http: encode response: %w", err)
	}
	return buf, nil
}

// encodeEvent is encodeJSON for an event, without reflection
// (store.Event.AppendJSON writes the same bytes).
func encodeEvent(ev *store.Event) (*bytes.Buffer, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	b, err := ev.AppendJSON(buf.AvailableBuffer())
	if err != nil {
		putBuf(buf)
		return nil, fmt.Errorf("v2http: encode response: %w", err)
	}
	buf.Write(b)
	return buf, nil
}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		bufPool.Put(buf)
	}
}

// writeBody writes a complete response; an empty contentType leaves the
// Content-Type header as it is. HEAD gets the same headers, including
// Content-Length, and no body.
func writeBody(w http.ResponseWriter, r *http.Request, code int, contentType string, body []byte) {
	hd := w.Header()
	if contentType != "" {
		hd["Content-Type"] = []string{contentType}
	}
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// writeJSON writes v as JSON with a trailing newline (etcd's Encoder).
func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	buf, err := encodeJSON(v)
	if err != nil {
		writeHTTPError(w, r, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeBody(w, r, code, "application/json", buf.Bytes())
	putBuf(buf)
}

// httpError is etcd's httptypes.HTTPError: the error body of the non-key
// endpoints, {"message":"..."} with no trailing newline.
type httpError struct {
	Message string `json:"message"`
}

func writeHTTPError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	b, _ := json.Marshal(httpError{Message: msg}) // a plain string: cannot fail
	writeBody(w, r, code, "application/json", b)
}

// requestError is a /v2/keys error caused by the request itself: etcd sends
// those with index 0.
func requestError(code int, cause string) *store.Error {
	return store.NewError(code, cause, 0)
}

// writeStoreError writes e as etcd does: its JSON with a trailing newline,
// X-Etcd-Index = e.Index, status from the code (or status when not 0).
func writeStoreError(w http.ResponseWriter, r *http.Request, e *store.Error, status int) {
	if status == 0 {
		status = e.StatusCode()
	}
	w.Header().Set("X-Etcd-Index", utoa(e.Index))
	writeBody(w, r, status, "application/json", e.MarshalBody())
}

func utoa(u uint64) string { return strconv.FormatUint(u, 10) }

// hexID is etcd's types.ID.String(): lower-case hex without padding.
func hexID(id uint64) string { return strconv.FormatUint(id, 16) }
