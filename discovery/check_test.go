package discovery_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/refused"
	"github.com/cairnkv/cairn/discovery"
)

// refusedAddr is a loopback HOST:PORT where connections are refused.
func refusedAddr(t *testing.T) string { return refused.Addr(t) }

func mustCheck(t *testing.T, check func(context.Context) error, err error) func(context.Context) error {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return check
}

func TestChecks(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer healthy.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := refusedAddr(t)
	httpCheck := func(u string) func(context.Context) error {
		c, err := discovery.HTTPCheck(u)
		return mustCheck(t, c, err)
	}
	tcpCheck := func(a string) func(context.Context) error {
		c, err := discovery.TCPCheck(a)
		return mustCheck(t, c, err)
	}

	tests := []struct {
		name  string
		check func(context.Context) error
		err   string // "" for healthy
	}{
		{"http 200", httpCheck(healthy.URL), ""},
		{"http 503", httpCheck(sick.URL + "/health"), "HTTP 503: database down"},
		{"http no answer in time", httpCheck(slow.URL), "context deadline exceeded"},
		{"http refused", httpCheck("http://" + closed), "connection refused"},
		{"tcp open", tcpCheck(ln.Addr().String()), ""},
		{"tcp refused", tcpCheck(closed), "connection refused"},
		{"exec exit 0", discovery.ExecCheck("true"), ""},
		{"exec exit 3", discovery.ExecCheck("echo not ready >&2; exit 3"), "exit status 3: not ready"},
		{"exec no such command", discovery.ExecCheck("/nonexistent/check"), "exit status 127"},
		{"exec too slow", discovery.ExecCheck("sleep 10"), "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := tt.check(ctx)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("check: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("check: %v; want an error with %q", err, tt.err)
			}
		})
	}
}

func TestCheckArguments(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"http without scheme", second(discovery.HTTPCheck("127.0.0.1:8080/health")), `HTTP check "127.0.0.1:8080/health": want an http:// or https:// URL`},
		{"http other scheme", second(discovery.HTTPCheck("ftp://a/")), "want an http:// or https:// URL"},
		{"http without host", second(discovery.HTTPCheck("http:///health")), "want an http:// or https:// URL"},
		{"tcp without port", second(discovery.TCPCheck("127.0.0.1")), `TCP check "127.0.0.1": want HOST:PORT`},
		{"tcp empty port", second(discovery.TCPCheck("127.0.0.1:")), "want HOST:PORT"},
		{"http ok", second(discovery.HTTPCheck("https://a:8443/health")), ""},
		{"tcp ok", second(discovery.TCPCheck("[::1]:5432")), ""},
	} {
		if (tt.want == "") != (tt.err == nil) || tt.err != nil && !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: %v; want %q", tt.name, tt.err, tt.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestInstanceKey(t *testing.T) {
	for _, tt := range []struct {
		cfg               discovery.Config
		service, instance string
		key, err          string
	}{
		{discovery.Config{}, "web", "web-1", "/skydns/internal/cairn/web/web-1", ""},
		{discovery.Config{}, "Web", "WEB-2", "/skydns/internal/cairn/web/web-2", ""},
		{discovery.Config{Prefix: "/dns", Domain: "example.org"}, "api.prod", "a1", "/dns/org/example/prod/api/a1", ""},
		{discovery.Config{}, "web_1", "w", "", `service "web_1": want DNS labels`},
		{discovery.Config{}, "web..prod", "w", "", `service "web..prod": want DNS labels`},
		{discovery.Config{}, "-web", "w", "", "want DNS labels"},
		{discovery.Config{}, "web", "web.1", "", `instance "web.1": want a DNS label`},
		{discovery.Config{}, "web", strings.Repeat("a", 64), "", "want a DNS label"},
		{discovery.Config{}, "web", "", "", "want a DNS label"},
	} {
		key, err := tt.cfg.InstanceKey(tt.service, tt.instance)
		if key != tt.key || (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("InstanceKey(%q, %q) = %q, %v; want %q, %q", tt.service, tt.instance, key, err, tt.key, tt.err)
		}
	}
}
