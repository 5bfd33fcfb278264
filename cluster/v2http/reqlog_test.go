package v2http

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// TestLogRequests: with LogRequests, one line per request with method,
// path, status and duration, and never the query string (it may carry a
// value); without it, no request lines.
func TestLogRequests(t *testing.T) {
	for _, on := range []bool{true, false} {
		var buf bytes.Buffer
		h, _ := newTestHandler(t, store.Config{}, func(c *Config) {
			c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
			c.LogRequests = on
		})
		do(h, "PUT", "/v2/keys/secret?value=hunter2", "")
		do(h, "GET", "/v2/keys/missing", "")
		out := buf.String()
		if !on {
			if strings.Contains(out, "msg=request") {
				t.Fatalf("request lines with LogRequests off:\n%s", out)
			}
			continue
		}
		if strings.Count(out, "msg=request") != 2 {
			t.Fatalf("want 2 request lines:\n%s", out)
		}
		for _, want := range []string{"method=PUT path=/v2/keys/secret", "code=201", "method=GET path=/v2/keys/missing", "code=404", "duration="} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
		if strings.Contains(out, "hunter2") {
			t.Errorf("a value was logged:\n%s", out)
		}
	}
}
