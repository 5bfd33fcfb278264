package v2http

import (
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// fakeClock is a manual clock for the rate limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimiterBucket(t *testing.T) {
	clk := &fakeClock{t: testNow}
	l := newRateLimiter(RateLimit{PerSecond: 2, Burst: 3})
	l.now = clk.Now
	steps := []struct {
		advance time.Duration
		key     string
		ok      bool
		wait    time.Duration
	}{
		{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}, // the burst
		{0, "a", false, 500 * time.Millisecond},
		{0, "b", true, 0}, // buckets are per identity
		{250 * time.Millisecond, "a", false, 250 * time.Millisecond},
		{250 * time.Millisecond, "a", true, 0},
		{0, "a", false, 500 * time.Millisecond},
		{time.Hour, "a", true, 0}, // refills up to the burst, no more
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", false, 500 * time.Millisecond},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		ok, wait := l.allow(s.key)
		if ok != s.ok || wait != s.wait {
			t.Errorf("step %d (%s): allow = %v %v, want %v %v", i, s.key, ok, wait, s.ok, s.wait)
		}
	}
}

func TestRateLimiterDefaults(t *testing.T) {
	for _, tt := range []struct {
		cfg   RateLimit
		off   bool
		burst float64
		max   int
	}{
		{RateLimit{}, true, 0, 0},
		{RateLimit{PerSecond: -1}, true, 0, 0},
		{RateLimit{PerSecond: math.NaN()}, true, 0, 0},
		{RateLimit{PerSecond: math.Inf(1)}, true, 0, 0},
		{RateLimit{PerSecond: 0.5}, false, 1, DefaultRateLimitIdentities},
		{RateLimit{PerSecond: 2.5}, false, 3, DefaultRateLimitIdentities},
		{RateLimit{PerSecond: 10, Burst: 50, MaxIdentities: 7}, false, 50, 7},
	} {
		l := newRateLimiter(tt.cfg)
		if (l == nil) != tt.off {
			t.Errorf("%+v: off = %v", tt.cfg, l == nil)
			continue
		}
		if l != nil && (l.burst != tt.burst || l.max != tt.max) {
			t.Errorf("%+v: burst %v max %d, want %v %d", tt.cfg, l.burst, l.max, tt.burst, tt.max)
		}
	}
}

// TestRateLimiterBound: the identities tracked stay under MaxIdentities;
// idle ones (full buckets) go first, then the least recently used.
func TestRateLimiterBound(t *testing.T) {
	clk := &fakeClock{t: testNow}
	l := newRateLimiter(RateLimit{PerSecond: 1, Burst: 2, MaxIdentities: 3})
	l.now = clk.Now
	for _, k := range []string{"a", "b", "c"} {
		l.allow(k)
		clk.Advance(100 * time.Millisecond)
	}
	// d evicts a, the least recently used (no bucket is full yet).
	l.allow("d")
	if l.size() != 3 {
		t.Fatalf("size %d", l.size())
	}
	l.mu.Lock()
	_, hasA := l.buckets["a"]
	l.mu.Unlock()
	if hasA {
		t.Error("a was not evicted")
	}
	// After a second every bucket is full again: e replaces them all.
	clk.Advance(2 * time.Second)
	l.allow("e")
	if l.size() != 1 {
		t.Errorf("size %d after idle buckets were dropped, want 1", l.size())
	}
	for i := range 100 {
		l.allow(string(rune('A' + i)))
		if l.size() > 3 {
			t.Fatalf("size %d over the bound", l.size())
		}
	}
}

func TestRateLimitHTTP(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) { c.RateLimit = RateLimit{PerSecond: 1, Burst: 2} })
	clk := &fakeClock{t: testNow}
	h.limiter.now = clk.Now

	mustCode(t, "1", doAs(h, "client/web", "PUT", "/v2/keys/a", "value=1"), 201)
	mustCode(t, "2", doAs(h, "client/web", "GET", "/v2/keys/a", ""), 200)
	before := fc.st.Index()
	w := doAs(h, "client/web", "PUT", "/v2/keys/a", "value=2")
	checkResponse(t, w, 429, errBody(209, "too many requests from client/web (limit 1 per second, burst 2); retry after 1s", 0))
	if w.Header().Get("Retry-After") != "1" || w.Header().Get("X-Etcd-Cluster-ID") != testClusterID || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", w.Header())
	}
	if fc.st.Index() != before {
		t.Error("a limited write changed the store")
	}
	// Other endpoints answer in their own error shape.
	w = doAs(h, "client/web", "GET", "/version", "")
	checkResponse(t, w, 429, `{"message":"too many requests from client/web (limit 1 per second, burst 2); retry after 1s"}`)
	if w.Header().Get("Retry-After") != "1" {
		t.Errorf("headers %v", w.Header())
	}
	// Another identity has its own bucket; a client without a certificate
	// is named by its address.
	mustCode(t, "other identity", doAs(h, "client/db", "GET", "/v2/keys/a", ""), 200)
	mustCode(t, "anonymous 1", doAs(h, "", "GET", "/version", ""), 200)
	mustCode(t, "anonymous 2", doAs(h, "", "GET", "/version", ""), 200)
	w = doAs(h, "", "GET", "/version", "")
	checkResponse(t, w, 429, `{"message":"too many requests from addr:192.0.2.1 (limit 1 per second, burst 2); retry after 1s"}`)

	clk.Advance(time.Second)
	mustCode(t, "after a second", doAs(h, "client/web", "PUT", "/v2/keys/a", "value=2"), 200)
}

// TestRateLimitOffByDefault: without RateLimit, nothing is limited.
func TestRateLimitOffByDefault(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	if h.limiter != nil {
		t.Fatal("a limiter without configuration")
	}
	for range 100 {
		if w := doAs(h, "client/web", "GET", "/version", ""); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
