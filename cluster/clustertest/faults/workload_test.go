//go:build linux

package faults

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
)

// TestClassify checks which answers are definite, through a real client:
// a refused dial was never sent; 100 and 101 are definite for a CAS; a
// 5xx answer and a timeout are unknown.
func TestClassify(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v2/keys/ok":
			w.Header().Set("X-Etcd-Index", "7")
			_, _ = w.Write([]byte(`{"action":"get","node":{"key":"/ok","value":"v","modifiedIndex":7,"createdIndex":7}}`))
		case "/v2/keys/missing":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errorCode":100,"message":"Key not found","cause":"/missing","index":7}`))
		case "/v2/keys/cas":
			w.WriteHeader(http.StatusPreconditionFailed)
			_, _ = w.Write([]byte(`{"errorCode":101,"message":"Compare failed","cause":"[a != b]","index":7}`))
		case "/v2/keys/internal":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"errorCode":300,"message":"Raft Internal Error","index":7}`))
		case "/v2/keys/hang":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handlers
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig
	c, err := v2client.New(v2client.Config{Endpoints: []string{srv.URL}, TLS: tc, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	l.Close()
	down, err := v2client.New(v2client.Config{Endpoints: []string{closed}, TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()

	for _, tc := range []struct {
		name string
		c    *v2client.Client
		in   Input
		want Result
		sent bool
	}{
		{"read", c, Input{Kind: Read, Key: "/ok"}, OK, true},
		{"read missing", c, Input{Kind: Read, Key: "/missing"}, NotFound, true},
		{"cas on a missing key", c, Input{Kind: CAS, Key: "/missing", Value: "x", Expect: "a"}, NotFound, true},
		{"cas compare failed", c, Input{Kind: CAS, Key: "/cas", Value: "x", Expect: "a"}, TestFailed, true},
		{"cas on prevIndex compare failed", c, Input{Kind: CAS, Key: "/cas", Value: "x", Expect: "a", ExpectIndex: 3}, TestFailed, true},
		{"write answered 404", c, Input{Kind: Write, Key: "/missing", Value: "x"}, Unknown, true},
		{"write answered 5xx", c, Input{Kind: Write, Key: "/internal", Value: "x"}, Unknown, true},
		{"cas answered 5xx", c, Input{Kind: CAS, Key: "/internal", Value: "x", Expect: "a"}, Unknown, true},
		{"write timed out", c, Input{Kind: Write, Key: "/hang", Value: "x"}, Unknown, true},
		{"cas timed out", c, Input{Kind: CAS, Key: "/hang", Value: "x", Expect: "a"}, Unknown, true},
		{"write refused", down, Input{Kind: Write, Key: "/a", Value: "x"}, OK, false},
		{"cas refused", down, Input{Kind: CAS, Key: "/a", Value: "x", Expect: "a"}, OK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &worker{c: tc.c, budget: 5 * time.Second}
			out, sent := w.do(tc.in)
			if sent != tc.sent || (sent && out.Result != tc.want) {
				t.Errorf("%s: %v (%s), sent %v; want %v, sent %v", describe(tc.in, out), out.Result, out.Err, sent, tc.want, tc.sent)
			}
			if tc.in.Kind == Read && out.Result == OK && (out.Value != "v" || out.Index != 7) {
				t.Errorf("read: %+v; want v at 7", out)
			}
		})
	}
}
