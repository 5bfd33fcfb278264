package discovery_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// These tests run the registrar against an in-process single-node Cairn
// served over mutual TLS. The registrar and the node share a fake clock:
// the test steps the registrar from one wait to the next, and the node's
// expiry sweeps (a real 20 ms ticker) expire keys by the fake time, so TTLs
// run out without the test sleeping.

const testKey = "/skydns/internal/cairn/web/web-1"

var testRecord = discovery.Record{Host: "10.0.0.5", Port: 8080, Priority: 10, Weight: 100}

// fakeClock is the clock of the registrar and the node. The registrar's
// After hands its wait to the test, which ends it with fire.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeWait
}

type fakeWait struct {
	d  time.Duration
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), waits: make(chan fakeWait, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- fakeWait{d, ch} // one at a time: the registrar waits on it next
	return ch
}

// next waits until the registrar has finished a step and sleeps, and
// returns its wait.
func (c *fakeClock) next(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(20 * time.Second):
		t.Fatal("the registrar did not come to rest within 20 s")
		return fakeWait{}
	}
}

// fire moves the clock to the end of w and ends it.
func (c *fakeClock) fire(w fakeWait) {
	c.Advance(w.d)
	w.ch <- c.Now()
}

// testCairn is a single-node Cairn on the fake clock.
type testCairn struct {
	node    *cluster.Node
	clk     *fakeClock
	handler http.Handler
	server  *tlsconf.Material // the node's TLS material
	client  *tls.Config       // a client certificate of the same CA
}

func newTestCairn(t *testing.T) *testCairn {
	t.Helper()
	clk := newFakeClock()
	return newTestCairnAt(t, clk, clk.Now)
}

// newTestCairnAt is newTestCairn with the node on the clock now.
func newTestCairnAt(t *testing.T, clk *fakeClock, now func() time.Time) *testCairn {
	t.Helper()
	c := clustertest.New(t, 1, clustertest.Options{Now: now})
	c.Leader()
	h, err := v2http.New(v2http.Config{Cluster: c.Node(0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	p, _, err := pki.EnsureDev(filepath.Join(t.TempDir(), "pki"), "node1", "cairn.internal", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tlsconf.LoadMaterial(tlsconf.DevFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ClientConfigFromFiles(tlsconf.DevClientFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	return &testCairn{node: c.Node(0), clk: clk, handler: h, server: m, client: tc}
}

// serve serves h (nil: the node's API) over mutual TLS on a new port and
// returns its URL and a function that stops it, closing its connections.
func (c *testCairn) serve(t *testing.T, h http.Handler) (string, func()) {
	t.Helper()
	if h == nil {
		h = c.handler
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, c.server.ServerConfig(tlsconf.Options{})))
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = srv.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return "https://" + ln.Addr().String(), stop
}

// get reads key from the node's store; ok is false for "key not found".
func (c *testCairn) get(t *testing.T, key string) (n *store.NodeExtern, ok bool) {
	t.Helper()
	ev, err := c.node.Store().Get(key, false, false, c.clk.Now())
	var se *store.Error
	if errors.As(err, &se) && se.ErrorCode == store.EcodeKeyNotFound {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return ev.Node, true
}

// mustGet reads key and checks that it holds value.
func (c *testCairn) mustGet(t *testing.T, key, value string) *store.NodeExtern {
	t.Helper()
	n, ok := c.get(t, key)
	if !ok {
		t.Fatalf("%s: key not found; want %s", key, value)
	}
	if n.Value == nil || *n.Value != value {
		t.Fatalf("%s = %v; want %s", key, n.Value, value)
	}
	return n
}

// propose writes r through raft, as another client would.
func (c *testCairn) propose(t *testing.T, r store.Request) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.node.Propose(ctx, &r); err != nil {
		t.Fatalf("propose %+v: %v", r, err)
	}
}

// waitGone polls until key has expired: the node's sweeps run on a real
// ticker.
func (c *testCairn) waitGone(t *testing.T, key string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for range tick.C {
		if _, ok := c.get(t, key); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there 10 s after its TTL ran out", key)
		}
	}
}

// checkNoLeaks fails the test if goroutines of a registrar or of its HTTP
// client outlive Run (the tests of this package run one at a time, and
// only registrars are HTTP clients here).
func checkNoLeaks(t *testing.T) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for range tick.C {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "discovery.(*Registrar)") || strings.Contains(g, "net/http.(*persistConn)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Run returned:\n%s", strings.Join(leaked, "\n\n"))
		}
	}
}

// logBuf collects a registrar's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count is the number of lines whose message starts with msg.
func (l *logBuf) count(msg string) int {
	return strings.Count(l.String(), "msg=\""+msg) + strings.Count(l.String(), "msg="+msg+" ")
}

// running is a registrar under test.
type running struct {
	r    *discovery.Registrar
	logs *logBuf
	stop func() error // cancels Run and returns its result
}

// config is a registrar configuration on c's clock, talking to endpoints,
// with no jitter. mod changes it.
func (c *testCairn) config(endpoints []string, logs *logBuf, mod func(*discovery.RegistrarConfig)) discovery.RegistrarConfig {
	cfg := discovery.RegistrarConfig{
		Endpoints: endpoints,
		TLS:       c.client,
		Key:       testKey,
		Record:    testRecord,
		TTL:       3 * time.Second,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       c.clk.Now,
		After:     c.clk.After,
		Jitter:    func(d time.Duration) time.Duration { return d },
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

// start runs a registrar of c.config(endpoints, mod) until the test ends.
func (c *testCairn) start(t *testing.T, endpoints []string, mod func(*discovery.RegistrarConfig)) *running {
	t.Helper()
	logs := &logBuf{}
	r, err := discovery.NewRegistrar(c.config(endpoints, logs, mod))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("Run did not return within 30 s of its context ending")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("registrar log:\n%s", logs)
		}
	})
	return &running{r: r, logs: logs, stop: stop}
}

func TestRegistrarRegistersAndHeartbeats(t *testing.T) {
	c := newTestCairn(t)
	url, _ := c.serve(t, nil)
	reg := c.start(t, []string{url}, nil)

	w := c.clk.next(t)
	n := c.mustGet(t, testKey, reg.r.Value())
	if n.TTL != 3 || n.Expiration == nil {
		t.Fatalf("registered with ttl %d, expiration %v; want 3", n.TTL, n.Expiration)
	}
	if w.d != time.Second {
		t.Fatalf("first heartbeat in %v; want TTL/3 = 1s", w.d)
	}
	created, modified := n.CreatedIndex, n.ModifiedIndex

	// Six heartbeats: twice the TTL, the node's sweeps running meanwhile.
	for i := range 6 {
		c.clk.fire(w)
		w = c.clk.next(t)
		n = c.mustGet(t, testKey, reg.r.Value())
		if n.ModifiedIndex <= modified || n.CreatedIndex != created || n.TTL != 3 {
			t.Fatalf("after heartbeat %d: created %d, modified %d, ttl %d; want created %d, modified > %d, ttl 3 (a refresh)",
				i+1, n.CreatedIndex, n.ModifiedIndex, n.TTL, created, modified)
		}
		modified = n.ModifiedIndex
	}
	if got := reg.logs.count("registered"); got != 1 {
		t.Errorf("%d registered lines; want 1", got)
	}
	if got := reg.logs.count("heartbeat failed"); got != 0 {
		t.Errorf("%d failed heartbeats", got)
	}

	if err := reg.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, ok := c.get(t, testKey); ok {
		t.Fatal("the record is still there after Run returned")
	}
	if reg.logs.count("deregistered") != 1 {
		t.Error("no deregistered line")
	}
	checkNoLeaks(t)
}

func TestRegistrarCheck(t *testing.T) {
	c := newTestCairn(t)
	url, _ := c.serve(t, nil)
	var failing atomic.Bool
	checks := atomic.Int32{}
	reg := c.start(t, []string{url}, func(cfg *discovery.RegistrarConfig) {
		cfg.CheckInterval = 500 * time.Millisecond
		cfg.Check = func(ctx context.Context) error {
			checks.Add(1)
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("the check has no deadline")
			}
			if failing.Load() {
				return errors.New("HTTP 503")
			}
			return nil
		}
	})

	w := c.clk.next(t)
	n := c.mustGet(t, testKey, reg.r.Value())
	if w.d != 500*time.Millisecond {
		t.Fatalf("next check in %v; want the check interval 500ms", w.d)
	}
	// A check between heartbeats writes nothing.
	c.clk.fire(w)
	w = c.clk.next(t)
	if m := c.mustGet(t, testKey, reg.r.Value()); m.ModifiedIndex != n.ModifiedIndex {
		t.Fatal("a check between heartbeats wrote")
	}
	// The heartbeat is due 1 s after registering.
	c.clk.fire(w)
	w = c.clk.next(t)
	n = c.mustGet(t, testKey, reg.r.Value())
	lastWrite := c.clk.Now()

	failing.Store(true)
	for c.clk.Now().Before(lastWrite.Add(3 * time.Second)) {
		c.clk.fire(w)
		w = c.clk.next(t)
		if m, ok := c.get(t, testKey); ok && m.ModifiedIndex != n.ModifiedIndex {
			t.Fatal("wrote while the check failed")
		}
	}
	c.waitGone(t, testKey)
	if reg.logs.count("check failing") != 1 {
		t.Errorf("want one check failing line")
	}

	failing.Store(false)
	c.clk.fire(w)
	w = c.clk.next(t)
	c.mustGet(t, testKey, reg.r.Value())
	if reg.logs.count("check passing") != 1 || reg.logs.count("registered") != 2 {
		t.Errorf("want one check passing line and a second registered line")
	}
	if w.d != 500*time.Millisecond {
		t.Errorf("next check in %v; want 500ms", w.d)
	}
	if checks.Load() < 8 {
		t.Errorf("%d checks", checks.Load())
	}
}

func TestRegistrarRegistersAgain(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, c *testCairn) // what happens to the key between two heartbeats
		log  string
	}{
		{"deleted", func(t *testing.T, c *testCairn) {
			c.propose(t, store.Request{Method: store.MethodDelete, Path: testKey})
		}, "registration gone"},
		{"expired", func(t *testing.T, c *testCairn) {
			// The registrar was stopped past its TTL (a pause, a partition).
			c.clk.Advance(3 * time.Second)
			c.waitGone(t, testKey)
		}, "registration gone"},
		{"overwritten", func(t *testing.T, c *testCairn) {
			c.propose(t, store.Request{Method: store.MethodPut, Path: testKey, Value: `{"host":"10.9.9.9"}`})
		}, "registration overwritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCairn(t)
			url, _ := c.serve(t, nil)
			reg := c.start(t, []string{url}, nil)
			w := c.clk.next(t)
			c.mustGet(t, testKey, reg.r.Value())

			tt.do(t, c)
			c.clk.fire(w)
			w = c.clk.next(t)
			n := c.mustGet(t, testKey, reg.r.Value())
			if n.TTL != 3 {
				t.Errorf("ttl %d; want 3", n.TTL)
			}
			if reg.logs.count(tt.log) != 1 || reg.logs.count("registered") != 2 {
				t.Errorf("want a %q line and a second registered line", tt.log)
			}
			if w.d != time.Second {
				t.Errorf("next heartbeat in %v; want 1s", w.d)
			}
		})
	}
}

func TestRegistrarDeregister(t *testing.T) {
	tests := []struct {
		name  string
		do    *store.Request // what happens to the key before Run ends
		stays string         // the value left at the key; "" for none
		log   string
	}{
		{name: "own record", log: "deregistered"},
		{name: "already gone", do: &store.Request{Method: store.MethodDelete, Path: testKey}, log: "deregistered (the record was already gone)"},
		{name: "replaced by another registrar", do: &store.Request{Method: store.MethodPut, Path: testKey, Value: `{"host":"10.0.0.6"}`},
			stays: `{"host":"10.0.0.6"}`, log: "not deregistered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCairn(t)
			url, _ := c.serve(t, nil)
			reg := c.start(t, []string{url}, nil)
			c.clk.next(t)
			if tt.do != nil {
				c.propose(t, *tt.do)
			}
			if err := reg.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			n, ok := c.get(t, testKey)
			switch {
			case tt.stays == "" && ok:
				t.Errorf("%s = %s after Run returned", testKey, *n.Value)
			case tt.stays != "" && (!ok || *n.Value != tt.stays):
				t.Errorf("%s gone or changed; want %s", testKey, tt.stays)
			}
			if reg.logs.count(tt.log) != 1 {
				t.Errorf("no %q line", tt.log)
			}
		})
	}
}

// countingListener accepts connections and closes them at once: a member
// that is up but broken. It counts the attempts.
func countingListener(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "https://" + ln.Addr().String(), &n
}

// switchable answers 500 with etcd error 300, as a member without a
// leader does, to every request while down is set, and to registrations
// (a PUT that is not a refresh) while downForPuts is set.
type switchable struct {
	h                 http.Handler
	down, downForPuts atomic.Bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	register := r.Method == http.MethodPut && r.URL.Query().Get("refresh") != "true"
	if s.down.Load() || (s.downForPuts.Load() && register) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"errorCode":300,"message":"Raft Internal Error","cause":"no leader","index":0}`+"\n")
		return
	}
	s.h.ServeHTTP(w, r)
}

// TestRegistrarGoneThenUnavailable: the heartbeat finds the record gone,
// and registering again fails for a while; the registrar retries the
// registration, not the heartbeat.
func TestRegistrarGoneThenUnavailable(t *testing.T) {
	c := newTestCairn(t)
	sw := &switchable{h: c.handler}
	url, _ := c.serve(t, sw)
	reg := c.start(t, []string{url}, nil)
	w := c.clk.next(t)
	c.propose(t, store.Request{Method: store.MethodDelete, Path: testKey})
	sw.downForPuts.Store(true)
	for range 3 {
		c.clk.fire(w)
		w = c.clk.next(t)
	}
	if _, ok := c.get(t, testKey); ok {
		t.Fatal("registered while registrations fail")
	}
	sw.downForPuts.Store(false)
	c.clk.fire(w)
	c.clk.next(t)
	c.mustGet(t, testKey, reg.r.Value())
	for msg, want := range map[string]int{"registration gone": 1, "registration failed": 3, "registered": 2, "heartbeats resumed": 0} {
		if got := reg.logs.count(msg); got != want {
			t.Errorf("%d %q lines; want %d", got, msg, want)
		}
	}
	// Failures 1 and 2 are warnings, 3 is not: 4 would be.
	if got := strings.Count(reg.logs.String(), `level=WARN msg="registration failed"`); got != 2 {
		t.Errorf("%d registration failed warnings; want 2", got)
	}
	if !strings.Contains(reg.logs.String(), "why=gone after_failures=3") {
		t.Error("the second registration does not say why=gone after_failures=3")
	}
}

func TestRegistrarFailover(t *testing.T) {
	c := newTestCairn(t)
	broken, attempts := countingListener(t)
	a, stopA := c.serve(t, nil)
	sw := &switchable{h: c.handler}
	b, _ := c.serve(t, sw)
	reg := c.start(t, []string{broken, a, b}, nil)

	// The broken member is skipped, and then not asked again: A worked.
	w := c.clk.next(t)
	n := c.mustGet(t, testKey, reg.r.Value())
	if attempts.Load() != 1 {
		t.Fatalf("%d attempts on the broken member; want 1", attempts.Load())
	}
	c.clk.fire(w)
	w = c.clk.next(t)
	if m := c.mustGet(t, testKey, reg.r.Value()); m.ModifiedIndex <= n.ModifiedIndex || attempts.Load() != 1 {
		t.Fatalf("heartbeat: modified %d (before %d), %d attempts on the broken member; want a refresh through A alone", m.ModifiedIndex, n.ModifiedIndex, attempts.Load())
	}

	// A goes away: B takes over, and stays first.
	stopA()
	c.clk.fire(w)
	w = c.clk.next(t)
	n = c.mustGet(t, testKey, reg.r.Value())
	if reg.logs.count("endpoint switched") != 1 || !strings.Contains(reg.logs.String(), "to="+b) {
		t.Fatalf("want one endpoint switched line to %s", b)
	}
	if w.d != time.Second {
		t.Fatalf("next heartbeat in %v; want 1s", w.d)
	}

	// No member answers: the registrar retries sooner than a heartbeat.
	sw.down.Store(true)
	c.clk.fire(w)
	w = c.clk.next(t)
	if reg.logs.count("heartbeat failed") != 1 {
		t.Fatal("no heartbeat failed line")
	}
	if w.d != time.Second/8 {
		t.Fatalf("retry in %v; want 125ms (an eighth of the heartbeat interval)", w.d)
	}
	c.clk.fire(w)
	w = c.clk.next(t)
	if w.d != time.Second/4 {
		t.Fatalf("second retry in %v; want 250ms", w.d)
	}

	sw.down.Store(false)
	c.clk.fire(w)
	w = c.clk.next(t)
	if m := c.mustGet(t, testKey, reg.r.Value()); m.ModifiedIndex <= n.ModifiedIndex {
		t.Fatal("no refresh after B came back")
	}
	if reg.logs.count("heartbeats resumed") != 1 || w.d != time.Second {
		t.Fatalf("want a heartbeats resumed line and the next heartbeat in 1s (have %v)", w.d)
	}
	if err := reg.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, ok := c.get(t, testKey); ok {
		t.Fatal("not deregistered through B")
	}
	checkNoLeaks(t)
}

func TestRegistrarUnavailableAtStart(t *testing.T) {
	c := newTestCairn(t)
	sw := &switchable{h: c.handler}
	sw.down.Store(true)
	url, _ := c.serve(t, sw)
	reg := c.start(t, []string{url}, nil)
	w := c.clk.next(t)
	if _, ok := c.get(t, testKey); ok || reg.logs.count("registration failed") != 1 {
		t.Fatal("want no record and a registration failed line")
	}
	sw.down.Store(false)
	c.clk.fire(w)
	c.clk.next(t)
	c.mustGet(t, testKey, reg.r.Value())
}

func TestRegistrarRefused(t *testing.T) {
	c := newTestCairn(t)
	url, _ := c.serve(t, nil)
	// A directory at the key: a PUT of a value there is etcd error 102.
	c.propose(t, store.Request{Method: store.MethodPut, Path: testKey, Dir: true})
	logs := &logBuf{}
	r, err := discovery.NewRegistrar(c.config([]string{url}, logs, nil))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "etcd error 102") {
		t.Fatalf("Run: %v; want etcd error 102", err)
	}
}

// TestRegistrarRealClock runs with the default clock and jitter: the record
// outlives its 1 s TTL by far.
func TestRegistrarRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 2.5 s")
	}
	c := newTestCairnAt(t, newFakeClock(), time.Now)
	url, _ := c.serve(t, nil)
	reg := c.start(t, []string{url}, func(cfg *discovery.RegistrarConfig) {
		cfg.TTL = time.Second
		cfg.Now, cfg.After, cfg.Jitter = nil, nil, nil
	})
	start := time.Now()
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	var registered bool
	for now := range ticker.C {
		ev, err := c.node.Store().Get(testKey, false, false, now)
		ok := err == nil && ev.Node.Value != nil && *ev.Node.Value == reg.r.Value()
		if registered && !ok {
			t.Fatalf("the record lapsed %v after start", now.Sub(start))
		}
		registered = registered || ok
		if now.Sub(start) > 2500*time.Millisecond {
			break
		}
	}
	if !registered {
		t.Fatal("never registered")
	}
	if err := reg.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRegistrarDefaultJitter(t *testing.T) {
	c := newTestCairn(t)
	url, _ := c.serve(t, nil)
	reg := c.start(t, []string{url}, func(cfg *discovery.RegistrarConfig) {
		cfg.TTL = 30 * time.Second
		cfg.Jitter = nil
	})
	seen := map[time.Duration]bool{}
	for range 5 {
		w := c.clk.next(t)
		if w.d < 9*time.Second || w.d >= 11*time.Second {
			t.Fatalf("heartbeat in %v; want 10s ± 10%%", w.d)
		}
		seen[w.d] = true
		c.clk.fire(w)
	}
	if len(seen) < 2 {
		t.Error("the same wait five times: no jitter")
	}
	c.clk.next(t)
	_ = reg.stop()
}

func TestNewRegistrarErrors(t *testing.T) {
	ok := discovery.RegistrarConfig{
		Endpoints: []string{"https://127.0.0.1:4001"},
		TLS:       &tls.Config{},
		Key:       testKey,
		Record:    testRecord,
		TTL:       10 * time.Second,
	}
	tests := []struct {
		name string
		mod  func(*discovery.RegistrarConfig)
		err  string
	}{
		{"valid", func(*discovery.RegistrarConfig) {}, ""},
		{"no endpoints", func(c *discovery.RegistrarConfig) { c.Endpoints = nil }, "no endpoints"},
		{"plain http", func(c *discovery.RegistrarConfig) { c.Endpoints = []string{"http://127.0.0.1:4001"} }, "HTTPS only"},
		{"path", func(c *discovery.RegistrarConfig) { c.Endpoints = []string{"https://127.0.0.1:4001/v2"} }, "want https://host:port"},
		{"no TLS", func(c *discovery.RegistrarConfig) { c.TLS = nil }, "TLS is required"},
		{"no key", func(c *discovery.RegistrarConfig) { c.Key = "" }, "registration key"},
		{"relative key", func(c *discovery.RegistrarConfig) { c.Key = "skydns/x" }, "registration key"},
		{"no TTL", func(c *discovery.RegistrarConfig) { c.TTL = 0 }, "at least 1s"},
		{"fractional TTL", func(c *discovery.RegistrarConfig) { c.TTL = 1500 * time.Millisecond }, "whole seconds"},
		{"negative interval", func(c *discovery.RegistrarConfig) { c.CheckInterval = -time.Second }, "negative"},
		{"bad port", func(c *discovery.RegistrarConfig) { c.Record.Port = 70000 }, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := discovery.NewRegistrar(cfg)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("NewRegistrar: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("NewRegistrar: %v; want an error with %q", err, tt.err)
			}
		})
	}
}
