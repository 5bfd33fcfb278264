package v2http

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// TestModBadInput: every 0.4 status code of reference §5.1/§5.2 for bad
// input, with index 0, and nothing stored.
func TestModBadInput(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	mustCode(t, "acquire", do(h, "POST", "/mod/v2/lock/held?ttl=60", ""), 200)
	before := fc.st.Index()
	e := func(code int, cause string) string { return errBody(code, cause, 0) }
	tests := []struct {
		name, method, target string
		code                 int
		want                 string
	}{
		{"acquire without ttl", "POST", "/mod/v2/lock/a", 400, e(202, "Acquire")},
		{"acquire ttl not a number", "POST", "/mod/v2/lock/a?ttl=x", 400, e(202, "Acquire")},
		{"acquire ttl 0", "POST", "/mod/v2/lock/a?ttl=0", 400, e(202, "Acquire")},
		{"acquire timeout not a number", "POST", "/mod/v2/lock/a?ttl=5&timeout=soon", 400, e(205, "Acquire")},
		{"acquire negative timeout", "POST", "/mod/v2/lock/a?ttl=5&timeout=-1", 400, e(205, "Acquire")},
		{"renew without ttl", "PUT", "/mod/v2/lock/held?index=1", 400, e(202, "Renew")},
		{"renew without index or value", "PUT", "/mod/v2/lock/held?ttl=5", 400, e(207, "Renew")},
		{"renew unknown index", "PUT", "/mod/v2/lock/held?ttl=5&index=99", 404, e(100, `Renew: no entry with index 99 in lock "held"`)},
		{"renew unknown value", "PUT", "/mod/v2/lock/held?ttl=5&value=nobody", 404, e(100, `Renew: no entry with value "nobody" in lock "held"`)},
		{"renew index not a number", "PUT", "/mod/v2/lock/held?ttl=5&index=x", 404, e(100, `Renew: no entry with index "x" in lock "held"`)},
		{"get bad field", "GET", "/mod/v2/lock/held?field=owner", 400, e(209, "Get")},
		{"get never used", "GET", "/mod/v2/lock/never", 404, e(100, `lock "never" was never used`)},
		{"release without index or value", "DELETE", "/mod/v2/lock/held", 400, e(207, "Release")},
		{"release with both", "DELETE", "/mod/v2/lock/held?index=1&value=a", 400, e(208, "Release")},
		{"release unknown index", "DELETE", "/mod/v2/lock/held?index=99", 404, e(100, `Release: no entry with index 99 in lock "held"`)},
		{"release unknown value", "DELETE", "/mod/v2/lock/held?value=nobody", 404, e(100, `Release: no entry with value "nobody" in lock "held"`)},
		{"lock without a name", "POST", "/mod/v2/lock?ttl=5", 400, e(209, "a lock name is required: /mod/v2/lock/<name>")},
		{"lock with an empty name", "POST", "/mod/v2/lock/?ttl=5", 400, e(209, "a lock name is required: /mod/v2/lock/<name>")},
		{"leader set without name", "PUT", "/mod/v2/leader/e?ttl=5", 400, e(206, "Set")},
		{"leader set without ttl", "PUT", "/mod/v2/leader/e?name=a", 400, e(202, "Acquire")},
		{"leader set bad timeout", "PUT", "/mod/v2/leader/e?name=a&ttl=5&timeout=x", 400, e(205, "Acquire")},
		{"leader delete without name", "DELETE", "/mod/v2/leader/e", 400, e(206, "Delete")},
		{"leader delete unknown name", "DELETE", "/mod/v2/leader/held?name=x", 404, e(100, `Delete: no entry with value "x" in leader "held"`)},
		{"leader never held", "GET", "/mod/v2/leader/never", 404, e(100, `election "never" was never held`)},
		{"leader bad wait", "GET", "/mod/v2/leader/e?wait=maybe", 400, e(209, `invalid value for "wait"`)},
		{"leader without a name", "GET", "/mod/v2/leader", 400, e(209, "a leader name is required: /mod/v2/leader/<name>")},
		{"name too deep", "POST", "/mod/v2/lock/" + strings.Repeat("a/", 61) + "b?ttl=5", 400, e(209, "key is 65 levels deep, over the limit of 64 levels")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkResponse(t, do(h, tc.method, tc.target, ""), tc.code, tc.want)
		})
	}
	if fc.st.Index() != before {
		t.Errorf("bad requests changed the store: index %d -> %d", before, fc.st.Index())
	}
	for _, tc := range []struct{ method, target string }{{"PATCH", "/mod/v2/lock/a"}, {"POST", "/mod/v2/leader/a"}} {
		if w := do(h, tc.method, tc.target, ""); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", tc.method, tc.target, w.Code)
		}
	}
	if w := do(h, "GET", "/mod/v2/other/a", ""); w.Code != http.StatusNotFound {
		t.Errorf("unknown module: %d, want 404", w.Code)
	}
}

// TestModLockLifecycle: acquire, read, renew, release, on a fresh store
// whose indexes are known.
func TestModLockLifecycle(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	checkResponse(t, do(h, "POST", "/mod/v2/lock/jobs/nightly?ttl=30&value=worker-1", ""), 200, "1")
	ev, err := fc.st.Get("/_mod/lock/jobs/nightly/00000000000000000001", false, false, testNow)
	if err != nil || *ev.Node.Value != "worker-1" || ev.Node.TTL != 30 {
		t.Fatalf("entry: %+v %v", ev, err)
	}
	checkResponse(t, do(h, "GET", "/mod/v2/lock/jobs/nightly", ""), 200, "worker-1")
	checkResponse(t, do(h, "GET", "/mod/v2/lock/jobs/nightly?field=index", ""), 200, "1")
	// The same value takes its entry back: the same index, a fresh TTL.
	checkResponse(t, do(h, "POST", "/mod/v2/lock/jobs/nightly?ttl=60&value=worker-1", ""), 200, "1")
	checkResponse(t, do(h, "PUT", "/mod/v2/lock/jobs/nightly?ttl=90&index=1", ""), 200, "")
	checkResponse(t, do(h, "PUT", "/mod/v2/lock/jobs/nightly?ttl=90&value=worker-1", ""), 200, "")
	ev, _ = fc.st.Get("/_mod/lock/jobs/nightly/00000000000000000001", false, false, testNow)
	if ev.Node.TTL != 90 {
		t.Errorf("ttl after renew: %d, want 90", ev.Node.TTL)
	}
	checkResponse(t, do(h, "DELETE", "/mod/v2/lock/jobs/nightly?value=worker-1", ""), 200, "")
	checkResponse(t, do(h, "GET", "/mod/v2/lock/jobs/nightly", ""), 200, "")
	// Without a value the entry holds "-"; the next index is the token.
	w := do(h, "POST", "/mod/v2/lock/jobs/nightly?ttl=30", "")
	if w.Code != 200 || w.Body.String() == "1" {
		t.Fatalf("second acquire: %d %s", w.Code, w.Body)
	}
	checkResponse(t, do(h, "GET", "/mod/v2/lock/jobs/nightly", ""), 200, "-")
	checkResponse(t, do(h, "DELETE", "/mod/v2/lock/jobs/nightly?index="+w.Body.String(), ""), 200, "")
	// The keys API sees the queue (hidden from listings, readable by path).
	if w := do(h, "GET", "/v2/keys/_mod/lock/jobs/nightly", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"dir":true`) {
		t.Errorf("keys API: %d %s", w.Code, w.Body)
	}
}

// pending is a request served in its own goroutine.
type pending struct {
	cancel context.CancelFunc
	done   chan *result
}

// start serves a request in a goroutine (it may block: an acquire), with
// a context the test may cancel as a client hanging up would.
func start(t *testing.T, h http.Handler, method, target string) *pending {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &pending{cancel: cancel, done: make(chan *result, 1)}
	r := httptest.NewRequestWithContext(ctx, method, target, nil)
	go func() { p.done <- serve(h, r) }()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// result waits for the answer (the test fails after waitTimeout).
func (p *pending) result(t *testing.T) *result {
	t.Helper()
	select {
	case w := <-p.done:
		p.done <- w // for Cleanup
		return w
	case <-time.After(waitTimeout):
		t.Fatal("no answer")
		return nil
	}
}

// answered reports whether the request has been answered.
func (p *pending) answered() bool { return len(p.done) > 0 }

// queue is the values of the entries of a lock queue, in order (none
// when the queue's directory does not exist).
func queue(t testing.TB, st *store.Store, dir string) []string {
	t.Helper()
	ev, err := st.Get(dir, false, true, testNow)
	if isKeyNotFound(err) {
		return nil // not there yet (a replica that lags) or never
	}
	if err != nil {
		t.Fatalf("queue %s: %v", dir, err)
	}
	var out []string
	for _, n := range ev.Node.Nodes {
		out = append(out, *n.Value)
	}
	return out
}

func waitQueue(t *testing.T, st *store.Store, dir string, want ...string) {
	t.Helper()
	poll.Until(t, waitTimeout, dir+" to be "+strings.Join(want, ","), func() bool {
		return strings.Join(queue(t, st, dir), ",") == strings.Join(want, ",")
	})
}

// TestModLockFIFO: waiters get the lock in the order they queued, one at
// a time, each with a higher index than the holder before it.
func TestModLockFIFO(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	const dir = "/_mod/lock/fifo"
	first := do(h, "POST", "/mod/v2/lock/fifo?ttl=60&value=w0", "")
	mustCode(t, "w0", first, 200)
	names := []string{"w0"}
	var waiters []*pending
	for i := 1; i <= 4; i++ {
		name := "w" + strconv.Itoa(i)
		waiters = append(waiters, start(t, h, "POST", "/mod/v2/lock/fifo?ttl=60&value="+name))
		names = append(names, name)
		waitQueue(t, fc.st, dir, names...) // queued in this order
	}
	last := first.Body.String()
	holder := "w0"
	for i, p := range waiters {
		for _, q := range waiters[i:] {
			if q.answered() {
				t.Fatalf("a waiter got the lock while %s holds it", holder)
			}
		}
		checkResponse(t, do(h, "DELETE", "/mod/v2/lock/fifo?value="+holder, ""), 200, "")
		w := p.result(t)
		mustCode(t, "waiter "+strconv.Itoa(i+1), w, 200)
		if a, _ := strconv.Atoi(w.Body.String()); a <= mustAtoi(t, last) {
			t.Fatalf("index %s after %s: the fencing token must grow", w.Body, last)
		}
		last, holder = w.Body.String(), names[i+1]
		checkResponse(t, do(h, "GET", "/mod/v2/lock/fifo", ""), 200, holder)
	}
}

func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	i, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("index %q: %v", s, err)
	}
	return i
}

// TestModLockTimeouts: timeout=0 does not wait, timeout=N waits N seconds;
// both answer 500 in plain text and leave no entry behind. Time is the
// synctest bubble's: no test waits for real seconds.
func TestModLockTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fc := newTestHandler(t, store.Config{}, nil)
		const dir = "/_mod/lock/t"
		mustCode(t, "holder", do(h, "POST", "/mod/v2/lock/t?ttl=60&value=holder", ""), 200)

		w := do(h, "POST", "/mod/v2/lock/t?ttl=60&value=try&timeout=0", "")
		if w.Code != 500 || !strings.Contains(w.Body.String(), "timeout=0 does not wait") || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("timeout=0: %d %q %v", w.Code, w.Body, w.Header())
		}
		if got := queue(t, fc.st, dir); len(got) != 1 {
			t.Fatalf("timeout=0 left %v", got)
		}

		// timeout=3 with ttl=2: the waiter refreshes its entry while it
		// waits (every second), then gives up.
		begin := time.Now()
		w = do(h, "POST", "/mod/v2/lock/t?ttl=2&value=patient&timeout=3", "")
		if w.Code != 500 || !strings.Contains(w.Body.String(), "timed out after 3s") {
			t.Fatalf("timeout=3: %d %q", w.Code, w.Body)
		}
		if d := time.Since(begin); d != 3*time.Second {
			t.Errorf("gave up after %v of bubble time, want 3s", d)
		}
		if got := queue(t, fc.st, dir); len(got) != 1 {
			t.Fatalf("timeout=3 left %v", got)
		}
		// Its heartbeats were refreshes (history only): 2 or 3 in 3 s.
		if n := fc.st.Stats().UpdateSuccess; n < 2 {
			t.Errorf("%d refreshes while waiting, want at least 2", n)
		}
		// The holder's own timeout=0 retry takes its entry back.
		checkResponse(t, do(h, "POST", "/mod/v2/lock/t?ttl=60&value=holder&timeout=0", ""), 200, "1")
	})
}

// TestModLockDisconnect: a waiter whose client hangs up deletes its entry.
func TestModLockDisconnect(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	const dir = "/_mod/lock/d"
	mustCode(t, "holder", do(h, "POST", "/mod/v2/lock/d?ttl=60&value=holder", ""), 200)
	p := start(t, h, "POST", "/mod/v2/lock/d?ttl=60&value=gone")
	waitQueue(t, fc.st, dir, "holder", "gone")
	p.cancel()
	p.result(t)
	waitQueue(t, fc.st, dir, "holder")
	if got := gaugeValue(t, h, `cairn_mod_abandoned_total{module="lock",reason="disconnect"}`); got != "1" {
		t.Errorf("abandoned{disconnect} = %q, want 1", got)
	}
	if got := gaugeValue(t, h, `cairn_mod_waiters{module="lock"}`); got != "0" {
		t.Errorf("waiters = %q, want 0", got)
	}
}

// TestModLockClose: Handler.Close ends a wait (503) and deletes the entry.
func TestModLockClose(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	const dir = "/_mod/lock/c"
	mustCode(t, "holder", do(h, "POST", "/mod/v2/lock/c?ttl=60&value=holder", ""), 200)
	p := start(t, h, "POST", "/mod/v2/lock/c?ttl=60&value=waiter")
	waitQueue(t, fc.st, dir, "holder", "waiter")
	h.Close()
	if w := p.result(t); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d %q", w.Code, w.Body)
	}
	waitQueue(t, fc.st, dir, "holder")
}

// TestModLockTTLLapse: a holder that stops renewing loses the lock when
// its entry expires, and the waiter gets it at that expiry; the old
// holder's renew is then 100.
func TestModLockTTLLapse(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	const dir = "/_mod/lock/ttl"
	w := do(h, "POST", "/mod/v2/lock/ttl?ttl=5&value=old", "")
	mustCode(t, "holder", w, 200)
	p := start(t, h, "POST", "/mod/v2/lock/ttl?ttl=3600&value=next")
	waitQueue(t, fc.st, dir, "old", "next")
	// One expiry tick past the holder's TTL (the leader's sweep).
	fc.st.DeleteExpiredKeys(testNow.Add(6 * time.Second))
	got := p.result(t)
	mustCode(t, "next", got, 200)
	if mustAtoi(t, got.Body.String()) <= mustAtoi(t, w.Body.String()) {
		t.Errorf("token %s after %s", got.Body, w.Body)
	}
	checkResponse(t, do(h, "PUT", "/mod/v2/lock/ttl?ttl=5&index="+w.Body.String(), ""), 404,
		errBody(100, "Renew: no entry with index "+w.Body.String()+` in lock "ttl"`, 0))
	checkResponse(t, do(h, "GET", "/mod/v2/lock/ttl", ""), 200, "next")
}

// TestModLockAuthorization: a lock needs write on its backing directory
// (read for GET), as /v2/keys would ask; a refusal is 110 and stores
// nothing.
func TestModLockAuthorization(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	steps := []struct{ target, body string }{
		{"/v2/auth/roles/jobs", `{"role":"jobs","permissions":{"kv":{"read":["/_mod/lock/jobs"],"write":["/_mod/lock/jobs","/_mod/leader/jobs"]}}}`},
		{"/v2/auth/roles/watcher", `{"role":"watcher","permissions":{"kv":{"read":["/_mod/lock/*","/_mod/leader/*"]}}}`},
		{"/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`},
		{"/v2/auth/users/client/worker", `{"user":"client/worker","roles":["jobs"]}`},
		{"/v2/auth/users/client/watcher", `{"user":"client/watcher","roles":["watcher"]}`},
	}
	for _, s := range steps {
		mustCode(t, "PUT "+s.target, doAs(h, rootID, "PUT", s.target, s.body), 201)
	}
	mustCode(t, "enable", doAs(h, rootID, "PUT", "/v2/auth/enable", ""), 200)

	mustCode(t, "worker acquires", doAs(h, "client/worker", "POST", "/mod/v2/lock/jobs?ttl=30", ""), 200)
	tests := []struct {
		id, method, target string
		code               int
	}{
		{"client/worker", "GET", "/mod/v2/lock/jobs", 200},
		{"client/worker", "POST", "/mod/v2/lock/other?ttl=30", 401},
		{"client/worker", "GET", "/mod/v2/lock/other", 401},
		{"client/watcher", "GET", "/mod/v2/lock/jobs", 200},
		{"client/watcher", "POST", "/mod/v2/lock/jobs?ttl=30", 401},
		{"client/watcher", "DELETE", "/mod/v2/lock/jobs?value=-", 401},
		{"client/watcher", "PUT", "/mod/v2/leader/jobs?name=w&ttl=30", 401},
		{"client/worker", "PUT", "/mod/v2/leader/jobs?name=w&ttl=30", 200},
		{"client/worker", "GET", "/mod/v2/leader/jobs", 401}, // read is on the lock only
		{"client/watcher", "GET", "/mod/v2/leader/jobs", 200},
		{rootID, "DELETE", "/mod/v2/lock/jobs?value=-", 200},
	}
	for _, tc := range tests {
		before := fc.st.Index()
		w := doAs(h, tc.id, tc.method, tc.target, "")
		if w.Code != tc.code {
			t.Errorf("%s %s %s: %d %s, want %d", tc.id, tc.method, tc.target, w.Code, w.Body, tc.code)
		}
		if tc.code == 401 {
			if w.Body.String() != keyNoAuth {
				t.Errorf("%s %s %s: body %q", tc.id, tc.method, tc.target, w.Body)
			}
			if fc.st.Index() != before {
				t.Errorf("%s %s %s: refused but the store changed", tc.id, tc.method, tc.target)
			}
		}
	}
}

// BenchmarkModLockCycle is the cost of one uncontended acquire and release
// on the handler (fake one-node cluster): the module's own overhead over
// the writes and reads it makes.
func BenchmarkModLockCycle(b *testing.B) {
	h, _ := newTestHandler(b, store.Config{}, nil)
	for b.Loop() {
		w := do(h, "POST", "/mod/v2/lock/bench?ttl=30", "")
		if w.Code != 200 {
			b.Fatalf("acquire: %d %s", w.Code, w.Body)
		}
		if w := do(h, "DELETE", "/mod/v2/lock/bench?index="+w.Body.String(), ""); w.Code != 200 {
			b.Fatalf("release: %d %s", w.Code, w.Body)
		}
	}
}

// TestModLockWaitLimit: a wait counts against the watch limit of its
// client: beyond it, an acquire is 429 (209) and queues nothing.
func TestModLockWaitLimit(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) { c.MaxWatchersPerClient = 1 })
	const dir = "/_mod/lock/lim"
	mustCode(t, "holder", do(h, "POST", "/mod/v2/lock/lim?ttl=60&value=holder", ""), 200)
	start(t, h, "POST", "/mod/v2/lock/lim?ttl=60&value=w1")
	waitQueue(t, fc.st, dir, "holder", "w1")
	checkResponse(t, do(h, "POST", "/mod/v2/lock/lim?ttl=60&value=w2", ""), 429,
		errBody(209, "too many open watches for this client (limit 1)", 0))
	if w := do(h, "GET", "/mod/v2/leader/lim?wait=true", ""); w.Code != 429 {
		t.Errorf("observer over the limit: %d %s", w.Code, w.Body)
	}
	waitQueue(t, fc.st, dir, "holder", "w1")
}

// TestModLockBarrierFails: a waiter decides only after a read barrier;
// while barriers fail (no leader), it keeps waiting, and it takes the
// lock once they succeed again.
func TestModLockBarrierFails(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	const dir = "/_mod/lock/b"
	holder := do(h, "POST", "/mod/v2/lock/b?ttl=60", "")
	mustCode(t, "holder", holder, 200)
	p := start(t, h, "POST", "/mod/v2/lock/b?ttl=60")
	waitQueue(t, fc.st, dir, "-", "-")
	fc.set(func(f *fakeCluster) { f.barrierErr = errors.New("no leader") })
	checkResponse(t, do(h, "DELETE", "/mod/v2/lock/b?index="+holder.Body.String(), ""), 200, "")
	// The waiter heads the queue now, but cannot confirm it.
	n := fc.barriers.Load()
	poll.Until(t, waitTimeout, "the waiter to try a few barriers", func() bool { return fc.barriers.Load() >= n+2 })
	if p.answered() {
		t.Fatalf("acquired without a read barrier: %d %s", p.result(t).Code, p.result(t).Body)
	}
	fc.set(func(f *fakeCluster) { f.barrierErr = nil })
	mustCode(t, "after the barrier works again", p.result(t), 200)
}

// TestModLockRejoinRestartsTTL: a client that comes back with its value
// (after a failover to another member) gets its entry's TTL restarted at
// once, not at the next heartbeat of the member it left.
func TestModLockRejoinRestartsTTL(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	checkResponse(t, do(h, "POST", "/mod/v2/lock/r?ttl=30&value=w", ""), 200, "1")
	checkResponse(t, do(h, "POST", "/mod/v2/lock/r?ttl=600&value=w", ""), 200, "1")
	ev, err := fc.st.Get("/_mod/lock/r", true, true, testNow)
	if err != nil || len(ev.Node.Nodes) != 1 {
		t.Fatalf("queue: %+v, %v", ev, err)
	}
	if got := ev.Node.Nodes[0].TTL; got != 600 {
		t.Fatalf("entry TTL %d after the rejoin, want 600", got)
	}
}
