package v2http

import (
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
	"github.com/prometheus/client_golang/prometheus"
)

// scrape returns the /metrics text of h.
func scrape(t testing.TB, h *Handler) string {
	t.Helper()
	w := do(h, "GET", "/metrics", "")
	if w.Code != 200 {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

// gaugeValue is the value of the sample named exactly name ("" if absent).
func gaugeValue(t testing.TB, h *Handler, name string) string {
	t.Helper()
	for _, line := range strings.Split(scrape(t, h), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func TestMetrics(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	do(h, "PUT", "/v2/keys/a", "value=1")
	do(h, "PUT", "/v2/keys/a", "value=2")
	do(h, "GET", "/v2/keys/a", "")
	do(h, "GET", "/v2/keys/missing", "")
	do(h, "GET", "/v2/keys/a?wait=true&waitIndex=1", "")
	do(h, "BREW", "/v2/keys/a", "")
	do(h, "GET", "/nowhere", "")
	fc.put(t, "/b", "x")

	text := scrape(t, h)
	for _, want := range []string{
		`cairn_http_requests_total{code="201",endpoint="keys",method="PUT"} 1`,
		`cairn_http_requests_total{code="200",endpoint="keys",method="PUT"} 1`,
		`cairn_http_requests_total{code="200",endpoint="keys",method="GET"} 1`,
		`cairn_http_requests_total{code="404",endpoint="keys",method="GET"} 1`,
		`cairn_http_requests_total{code="200",endpoint="watch",method="GET"} 1`,
		`cairn_http_requests_total{code="405",endpoint="keys",method="other"} 1`,
		`cairn_http_requests_total{code="404",endpoint="notfound",method="GET"} 1`,
		`cairn_http_request_duration_seconds_count{code="201",endpoint="keys",method="PUT"} 1`,
		`cairn_store_index 3`,
		`cairn_store_watchers 0`,
		`cairn_http_watches 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, `cairn_http_request_duration_seconds_count{code="200",endpoint="watch"`) {
		t.Errorf("watch durations are in the latency histogram")
	}
}

func TestMetricsRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	fc := newFakeCluster(store.Config{})
	h, err := New(Config{Cluster: fc, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	do(h, "GET", "/v2/keys/", "")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"cairn_http_requests_total", "cairn_http_request_duration_seconds", "cairn_store_index", "cairn_store_watchers"} {
		if !names[n] {
			t.Errorf("registry lacks %s", n)
		}
	}
	if _, err := New(Config{Cluster: fc, Registry: reg}); err == nil {
		t.Errorf("a second handler on the same registry: no error")
	}
	if _, err := New(Config{Cluster: fc, Registry: registererOnly{reg}}); err == nil {
		t.Errorf("a Registerer that cannot gather, without Gatherer: no error")
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("no Cluster: no error")
	}
}

type registererOnly struct{ prometheus.Registerer }
