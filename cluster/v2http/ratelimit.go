package v2http

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/store"
)

// DefaultRateLimitIdentities is the default of RateLimit.MaxIdentities.
const DefaultRateLimitIdentities = 10000

// RateLimit limits the request rate of each client identity with a token
// bucket: PerSecond tokens a second, up to Burst saved; every request (a
// watch counts once, when it starts) takes one. A request finding the
// bucket empty is answered 429 with a Retry-After header and changes
// nothing. The zero value turns limiting off.
type RateLimit struct {
	// PerSecond is the sustained rate per identity; 0 (the default) turns
	// rate limiting off.
	PerSecond float64
	// Burst is how many requests an identity may make at once after being
	// idle; default the rate rounded up, at least 1.
	Burst int
	// MaxIdentities bounds the identities tracked at once; default
	// DefaultRateLimitIdentities. Beyond it, identities whose bucket is full
	// again (idle long enough) are forgotten first, then the least recently
	// seen: forgetting an identity only gives it a full bucket back.
	MaxIdentities int
}

// rateLimiter holds one token bucket per identity.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	now   func() time.Time // monotonic clock; tests replace it

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time // when tokens was computed
}

// newRateLimiter returns nil when cfg turns limiting off.
func newRateLimiter(cfg RateLimit) *rateLimiter {
	if cfg.PerSecond <= 0 || math.IsNaN(cfg.PerSecond) || math.IsInf(cfg.PerSecond, 0) {
		return nil
	}
	burst := cfg.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(cfg.PerSecond)))
	}
	maxIDs := cfg.MaxIdentities
	if maxIDs <= 0 {
		maxIDs = DefaultRateLimitIdentities
	}
	return &rateLimiter{rate: cfg.PerSecond, burst: float64(burst), max: maxIDs, now: time.Now, buckets: make(map[string]*bucket)}
}

// allow takes a token for key. Without one it reports how long until the
// next token.
func (l *rateLimiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evictLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.refill(now, l.rate, l.burst)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(burst, b.tokens+el.Seconds()*rate)
		b.last = now
	}
}

// evictLocked makes room for one identity: it drops every bucket that is
// full again (a new bucket would be the same), or else the one least
// recently refilled, which is the one least recently used.
func (l *rateLimiter) evictLocked(now time.Time) {
	var oldest string
	var oldestAt time.Time
	found := false
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
			continue
		}
		if !found || b.last.Before(oldestAt) {
			oldest, oldestAt, found = k, b.last, true
		}
	}
	if len(l.buckets) >= l.max {
		delete(l.buckets, oldest)
	}
}

// size is the number of identities tracked.
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// allowRequest applies the rate limit to r, answering 429 itself when r
// is over it: for /v2/keys with etcd's error shape (code 209, as for too
// many watches: clients match on errorCode), elsewhere as
// {"message":"..."}; both with Retry-After in whole seconds.
func (h *Handler) allowRequest(w http.ResponseWriter, r *http.Request) bool {
	who := h.identityName(r)
	ok, wait := h.limiter.allow(who)
	if ok {
		return true
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := "too many requests from " + who + " (limit " + strconv.FormatFloat(h.limiter.rate, 'g', -1, 64) +
		" per second, burst " + strconv.Itoa(int(h.limiter.burst)) + "); retry after " + strconv.Itoa(secs) + "s"
	if r.URL.Path == keysPrefix || strings.HasPrefix(r.URL.Path, keysPrefix+"/") {
		w.Header().Set("X-Etcd-Cluster-ID", hexID(h.cluster.Status().ClusterID))
		writeStoreError(w, r, requestError(store.EcodeInvalidField, msg), http.StatusTooManyRequests)
		return false
	}
	writeHTTPError(w, r, http.StatusTooManyRequests, msg)
	return false
}
