package v2http

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// The handler alone (no network, no TLS, a no-op read barrier): what the
// HTTP layer costs per request on top of the store.

func BenchmarkGet(b *testing.B) {
	h, fc := newTestHandler(b, store.Config{}, nil)
	fc.put(b, "/bench/key", strings.Repeat("v", 100))
	r := httptest.NewRequest("GET", "/v2/keys/bench/key", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		r.Form, r.PostForm = nil, nil
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	h, _ := newTestHandler(b, store.Config{}, nil)
	body := "value=" + strings.Repeat("v", 100)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("PUT", "/v2/keys/bench/key", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusCreated {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
