package v2http

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

// fuzzLimits are small limits, so that the fuzzer reaches each of them.
func fuzzLimits(c *Config) {
	c.MaxRequestBytes = 512
	c.MaxValueBytes = 128
	c.MaxKeyBytes = 64
	c.MaxKeyDepth = 6
	c.ValidateWrite = discovery.Config{}.Validate
}

// FuzzKeyRequest feeds /v2/keys requests, as a client sends them on the
// wire (method, path and query, Content-Type, body), to the request parser
// and then to the whole handler. Properties:
//   - the parser gives either an etcd request error (one of the parse
//     codes, HTTP 400, index 0, a JSON body with that errorCode) or a valid
//     request: a clean key, a known PrevExist, wait only on GET, a refresh
//     with a TTL and no value, a write within every limit and accepted by
//     the write validator;
//   - a valid request renders back into a query that parses to the same
//     request (the parser reads each parameter one way);
//   - the handler answers every request with etcd's shapes: a JSON error
//     with an errorCode, an event with an action, or a redirect, 405 or 404
//     of the router, and never a 5xx.
func FuzzKeyRequest(f *testing.F) {
	form := "application/x-www-form-urlencoded"
	for _, s := range []struct{ method, target, ctype, body string }{
		// What etcdctl, the Go client and curl send.
		{"PUT", "/message", form, "value=Hello+world"},
		{"PUT", "/foo?ttl=5", form, "value=bar"},
		{"PUT", "/foo?prevExist=false", form, "value=v&ttl="},
		{"PUT", "/foo?prevValue=one", form, "value=two"},
		{"PUT", "/foo?prevIndex=7&value=x", "", ""},
		{"PUT", "/dir?dir=true&ttl=30", "", ""},
		{"PUT", "/foo?refresh=true&prevExist=true", form, "ttl=20"},
		{"PUT", "/foo", form, "value=x&noValueOnSuccess=true"},
		{"POST", "/queue", form, "value=Job1"},
		{"POST", "/queue?dir=true", "", ""},
		{"GET", "/foo?wait=true&waitIndex=7", "", ""},
		{"GET", "/dir?recursive=true&sorted=true&quorum=true", "", ""},
		{"GET", "/dir?wait=true&recursive=true&stream=true", "", ""},
		{"GET", "/foo?stale=true", "", ""},
		{"HEAD", "/foo", "", ""},
		{"DELETE", "/dir?dir=true&recursive=true", "", ""},
		{"DELETE", "/foo?prevValue=bar&prevIndex=3", "", ""},
		// A registration under the discovery prefix, good and bad.
		{"PUT", "/skydns/internal/cairn/web/web-1?ttl=30", form, `value={"host":"10.0.0.5","port":8080}`},
		{"PUT", "/skydns/internal/cairn/web/web-2", form, `value={"host":"10.0.0.300","port":80}`},
		{"PUT", "/skydns/internal/cairn/web/web-3?refresh=true&ttl=30&prevExist=true", "", ""},
		// Bad requests: escapes, types, limits, odd methods and bodies.
		{"GET", "/foo?a=%zz", "", ""},
		{"PUT", "/foo?ttl=-1&prevIndex=x", form, "value=%"},
		{"PUT", "/foo?prevValue=", form, "value=x"},
		{"PUT", "/foo", form + "; =", "value=x"},
		{"PUT", "/foo", "application/json", `{"value":"x"}`},
		{"PUT", "/foo", form, "value=" + strings.Repeat("x", 600)},
		{"PUT", "/a/b/c/d/e/f/g/h", form, "value=x"},
		{"DELETE", "/foo?wait=true", "", ""},
		{"PATCH", "/foo", form, "value=x"},
		{"GET", "/../../etc/passwd", "", ""},
		{"GET", "/a/./b//c/", "", ""},
		{"PUT", "/%2e%2e/%00?value=%ff%fe", "", ""},
		{"PUT", "/_cairn/x", form, "value=steal"},
	} {
		f.Add(s.method, s.target, s.ctype, s.body)
	}
	f.Fuzz(func(t *testing.T, method, target, ctype, body string) {
		raw := func() string {
			return fmt.Sprintf("%s /v2/keys%s HTTP/1.1\r\nHost: cairn\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
				method, target, ctype, len(body), body)
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw())))
		if err != nil {
			t.Skip() // the server answers 400 before any handler runs
		}
		h, fc := newTestHandler(t, store.Config{HistorySize: 64}, fuzzLimits)
		fc.put(t, "/foo", "bar")
		fc.put(t, "/dir/x", "1")
		fc.put(t, "/skydns/internal/cairn/web/web-1", `{"host":"10.0.0.5","port":8080}`)

		if strings.HasPrefix(r.URL.Path, keysPrefix+"/") || r.URL.Path == keysPrefix {
			kr, perr := h.parseKeyRequest(httptest.NewRecorder(), r)
			if perr != nil {
				checkParseError(t, perr)
			} else {
				checkKeyRequest(t, h, r, &kr)
				checkReparse(t, h, r.Method, &kr)
			}
		}

		// The whole handler, on a fresh copy of the request. A cancelled
		// context ends a watch right after its headers.
		r, _ = http.ReadRequest(bufio.NewReader(strings.NewReader(raw())))
		ctx, cancel := context.WithCancel(r.Context())
		cancel()
		w := serve(h, r.WithContext(ctx))
		checkKeyResponse(t, r, w)
	})
}

// parseCodes are the errors the parser gives.
var parseCodes = []int{store.EcodePrevValueRequired, store.EcodeTTLNaN, store.EcodeIndexNaN,
	store.EcodeInvalidField, store.EcodeInvalidForm, store.EcodeRefreshValue, store.EcodeRefreshTTLRequired}

func checkParseError(t *testing.T, e *store.Error) {
	t.Helper()
	if !containsInt(parseCodes, e.ErrorCode) || e.Index != 0 || e.StatusCode() != http.StatusBadRequest {
		t.Fatalf("parse error %+v: want a parse code, index 0, HTTP 400", e)
	}
	var body struct {
		ErrorCode int    `json:"errorCode"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(e.MarshalBody(), &body); err != nil || body.ErrorCode != e.ErrorCode || body.Message == "" {
		t.Fatalf("error body %q: %v", e.MarshalBody(), err)
	}
}

func checkKeyRequest(t *testing.T, h *Handler, r *http.Request, kr *keyRequest) {
	t.Helper()
	switch {
	case kr.Method != r.Method:
		t.Fatalf("method %q parsed as %q", r.Method, kr.Method)
	case kr.Path == "" || kr.Path[0] != '/' || path.Clean(kr.Path) != kr.Path:
		t.Fatalf("key %q is not clean", kr.Path)
	case kr.PrevExist > store.PrevExistFalse:
		t.Fatalf("prevExist %d", kr.PrevExist)
	case kr.wait && r.Method != http.MethodGet:
		t.Fatalf("wait on %s", r.Method)
	case kr.Refresh && (!kr.HasTTL || kr.Value != ""):
		t.Fatalf("refresh with HasTTL %v, value %q", kr.HasTTL, kr.Value)
	case !kr.HasTTL && kr.TTL != 0:
		t.Fatalf("ttl %d without HasTTL", kr.TTL)
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		return
	}
	if len(kr.Path) > h.cfg.MaxKeyBytes || keyDepth(kr.Path) > h.cfg.MaxKeyDepth || int64(len(kr.Value)) > h.cfg.MaxValueBytes {
		t.Fatalf("write over a limit: key %q, value of %d bytes", kr.Path, len(kr.Value))
	}
	if !kr.Refresh {
		if err := h.cfg.ValidateWrite(kr.Path, kr.Value, kr.Dir); err != nil {
			t.Fatalf("write the validator refuses passed: %v", err)
		}
	}
}

// checkReparse renders kr as a query and parses it again.
func checkReparse(t *testing.T, h *Handler, method string, kr *keyRequest) {
	t.Helper()
	q := url.Values{}
	setUint := func(k string, v uint64) {
		if v != 0 {
			q.Set(k, strconv.FormatUint(v, 10))
		}
	}
	setBool := func(k string, v bool) {
		if v {
			q.Set(k, "true")
		}
	}
	setUint("prevIndex", kr.PrevIndex)
	setUint("waitIndex", kr.waitIndex)
	setBool("recursive", kr.Recursive)
	setBool("sorted", kr.sorted)
	setBool("wait", kr.wait)
	setBool("dir", kr.Dir)
	setBool("quorum", kr.quorum)
	setBool("stream", kr.stream)
	setBool("stale", kr.stale)
	setBool("noValueOnSuccess", kr.noValueOnSuccess)
	setBool("refresh", kr.Refresh)
	if kr.PrevValue != "" {
		q.Set("prevValue", kr.PrevValue)
	}
	if kr.Value != "" {
		q.Set("value", kr.Value)
	}
	if kr.HasTTL {
		q.Set("ttl", strconv.FormatUint(kr.TTL, 10))
	}
	if kr.PrevExist != store.PrevExistUnset {
		q.Set("prevExist", strconv.FormatBool(kr.PrevExist == store.PrevExistTrue))
	}
	u := url.URL{Path: keysPrefix + kr.Path, RawQuery: q.Encode()}
	r2 := httptest.NewRequest(method, u.RequestURI(), nil)
	kr2, perr := h.parseKeyRequest(httptest.NewRecorder(), r2)
	if perr != nil {
		t.Fatalf("re-rendered request %s %s refused: %v", method, u.RequestURI(), perr)
	}
	if !reflect.DeepEqual(*kr, kr2) {
		t.Fatalf("re-rendered request %s %s parsed differently:\n got %+v\nwant %+v", method, u.RequestURI(), kr2, *kr)
	}
}

// checkKeyResponse checks the handler's answer to r.
func checkKeyResponse(t *testing.T, r *http.Request, w *result) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s %s: %d %q", r.Method, r.URL, w.Code, w.Body)
	}
	switch w.Code {
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusMethodNotAllowed, http.StatusNotFound:
		return // the router's: a non-canonical path, a method or a path not served
	}
	if r.Method == http.MethodHead || (w.Code == http.StatusOK && w.Body.Len() == 0) {
		return // no body, or a watch ended by its client right after the headers
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: %d with Content-Type %q: %q", r.Method, r.URL, w.Code, ct, w.Body)
	}
	var body struct {
		Action    string          `json:"action"`
		Node      json.RawMessage `json:"node"`
		ErrorCode int             `json:"errorCode"`
		Message   string          `json:"message"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON: %v", r.Method, r.URL, w.Code, w.Body, err)
	}
	if w.Code >= 400 {
		if body.ErrorCode == 0 || body.Message == "" {
			t.Fatalf("%s %s: error %d without errorCode: %q", r.Method, r.URL, w.Code, w.Body)
		}
	} else if body.Action == "" {
		t.Fatalf("%s %s: %d without an action: %q", r.Method, r.URL, w.Code, w.Body)
	}
}

func containsInt(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
