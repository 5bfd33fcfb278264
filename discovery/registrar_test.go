package discovery_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

// These tests run the registrar in a synctest bubble against fakeKeys, an
// etcd v2 keys API over a store.Store on the bubble's clock: time is
// simulated, so heartbeats and TTLs run their course without the test
// waiting. (The client that fails over between members is tested in
// cluster/v2client; cmd/cairn wires the two together.)

const testKey = "/skydns/internal/cairn/web/web-1"

var testRecord = discovery.Record{Host: "10.0.0.5", Port: 8080, Priority: 10, Weight: 100}

// errNoMember is what fakeKeys answers while down: no member answered.
var errNoMember = errors.New("no endpoint answered")

// fakeKeys is discovery.Keys over a store on the bubble's clock. Every
// call first expires what is due, as the leader's sweep would.
type fakeKeys struct {
	mu sync.Mutex
	st *store.Store
	// down fails every call; downForSets fails registrations only.
	down, downForSets bool
	refreshes         []time.Time // when each heartbeat arrived
	calls             int
}

var _ discovery.Keys = (*fakeKeys)(nil)

func newFakeKeys() *fakeKeys { return &fakeKeys{st: store.New(store.Config{})} }

func (f *fakeKeys) apply(r *store.Request, set bool) (*store.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	now := time.Now()
	f.st.DeleteExpiredKeys(now)
	if f.down || (set && f.downForSets) {
		return nil, errNoMember
	}
	return f.st.Apply(r, now)
}

func (f *fakeKeys) SetTTL(_ context.Context, key, value string, ttl time.Duration) (*store.Event, error) {
	return f.apply(&store.Request{Method: store.MethodPut, Path: key, Value: value, HasTTL: true, TTL: uint64(ttl / time.Second)}, true)
}

func (f *fakeKeys) Refresh(_ context.Context, key string, ttl time.Duration) (*store.Event, error) {
	f.mu.Lock()
	f.refreshes = append(f.refreshes, time.Now())
	f.mu.Unlock()
	return f.apply(&store.Request{Method: store.MethodPut, Path: key, Refresh: true, PrevExist: store.PrevExistTrue,
		HasTTL: true, TTL: uint64(ttl / time.Second)}, false)
}

func (f *fakeKeys) CompareAndDelete(_ context.Context, key, value string) (*store.Event, error) {
	return f.apply(&store.Request{Method: store.MethodDelete, Path: key, PrevValue: value}, false)
}

func (f *fakeKeys) set(fn func(f *fakeKeys)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// write changes the store as another client would.
func (f *fakeKeys) write(t *testing.T, r store.Request) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.st.Apply(&r, time.Now()); err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
}

// get reads key as of now; ok is false once it is gone.
func (f *fakeKeys) get(t *testing.T, key string) (n *store.NodeExtern, ok bool) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.DeleteExpiredKeys(time.Now())
	ev, err := f.st.Get(key, false, false, time.Now())
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
func (f *fakeKeys) mustGet(t *testing.T, key, value string) *store.NodeExtern {
	t.Helper()
	n, ok := f.get(t, key)
	if !ok {
		t.Fatalf("%s: key not found; want %s", key, value)
	}
	if n.Value == nil || *n.Value != value {
		t.Fatalf("%s = %v; want %s", key, n.Value, value)
	}
	return n
}

// advance lets d of simulated time pass and the registrar come to rest.
func advance(d time.Duration) {
	time.Sleep(d) // in the bubble: simulated, returns at once
	synctest.Wait()
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

// config is a registrar configuration writing to keys, with no jitter.
// mod changes it.
func config(keys discovery.Keys, logs *logBuf, mod func(*discovery.RegistrarConfig)) discovery.RegistrarConfig {
	cfg := discovery.RegistrarConfig{
		Keys:   keys,
		Key:    testKey,
		Record: testRecord,
		TTL:    3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Jitter: func(d time.Duration) time.Duration { return d },
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

// start runs a registrar in the bubble and lets it come to rest: its
// first registration is done.
func start(t *testing.T, keys discovery.Keys, mod func(*discovery.RegistrarConfig)) *running {
	t.Helper()
	logs := &logBuf{}
	r, err := discovery.NewRegistrar(config(keys, logs, mod))
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
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("registrar log:\n%s", logs)
		}
	})
	synctest.Wait()
	return &running{r: r, logs: logs, stop: stop}
}

func TestRegistrarRegistersAndHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := newFakeKeys()
		reg := start(t, keys, nil)
		n := keys.mustGet(t, testKey, reg.r.Value())
		if n.TTL != 3 || n.Expiration == nil {
			t.Fatalf("registered with ttl %d, expiration %v; want 3", n.TTL, n.Expiration)
		}
		created, modified := n.CreatedIndex, n.ModifiedIndex

		// The first heartbeat is due TTL/3 = 1 s after registering.
		advance(time.Second - time.Millisecond)
		if keys.mustGet(t, testKey, reg.r.Value()).ModifiedIndex != modified {
			t.Fatal("a heartbeat before TTL/3")
		}
		advance(time.Millisecond)
		// Six heartbeats: twice the TTL.
		for i := range 6 {
			if i > 0 {
				advance(time.Second)
			}
			n = keys.mustGet(t, testKey, reg.r.Value())
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
		if _, ok := keys.get(t, testKey); ok {
			t.Fatal("the record is still there after Run returned")
		}
		if reg.logs.count("deregistered") != 1 {
			t.Error("no deregistered line")
		}
	})
}

func TestRegistrarCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := newFakeKeys()
		var failing atomic.Bool
		var checks atomic.Int32
		reg := start(t, keys, func(cfg *discovery.RegistrarConfig) {
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
		n := keys.mustGet(t, testKey, reg.r.Value())
		// A check between heartbeats writes nothing.
		advance(500 * time.Millisecond)
		if checks.Load() != 2 || keys.mustGet(t, testKey, reg.r.Value()).ModifiedIndex != n.ModifiedIndex {
			t.Fatalf("%d checks, or a write between heartbeats", checks.Load())
		}
		// The heartbeat is due 1 s after registering.
		advance(500 * time.Millisecond)
		n = keys.mustGet(t, testKey, reg.r.Value())

		failing.Store(true)
		for range 6 { // 3 s: the TTL runs out
			advance(500 * time.Millisecond)
			if m, ok := keys.get(t, testKey); ok && m.ModifiedIndex != n.ModifiedIndex {
				t.Fatal("wrote while the check failed")
			}
		}
		if _, ok := keys.get(t, testKey); ok {
			t.Fatal("the record outlived its TTL without heartbeats")
		}
		if reg.logs.count("check failing") != 1 {
			t.Errorf("want one check failing line")
		}

		failing.Store(false)
		advance(500 * time.Millisecond)
		keys.mustGet(t, testKey, reg.r.Value())
		if reg.logs.count("check passing") != 1 || reg.logs.count("registered") != 2 {
			t.Errorf("want one check passing line and a second registered line")
		}
		if checks.Load() != 10 {
			t.Errorf("%d checks; want 10 (one every 500ms)", checks.Load())
		}
	})
}

func TestRegistrarRegistersAgain(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, keys *fakeKeys) // what happens to the key before the next heartbeat
		log  string
	}{
		{"deleted", func(t *testing.T, keys *fakeKeys) {
			keys.write(t, store.Request{Method: store.MethodDelete, Path: testKey})
		}, "registration gone"},
		{"expired", func(t *testing.T, keys *fakeKeys) {
			// Heartbeats fail (a partition) past the TTL: the record
			// expires, and the cluster answers again.
			keys.set(func(f *fakeKeys) { f.down = true })
			advance(3 * time.Second)
			if _, ok := keys.get(t, testKey); ok {
				t.Fatal("the record outlived its TTL")
			}
			keys.set(func(f *fakeKeys) { f.down = false })
		}, "registration gone"},
		{"overwritten", func(t *testing.T, keys *fakeKeys) {
			keys.write(t, store.Request{Method: store.MethodPut, Path: testKey, Value: `{"host":"10.9.9.9"}`})
		}, "registration overwritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				keys := newFakeKeys()
				reg := start(t, keys, nil)
				tt.do(t, keys)
				advance(time.Second)
				n := keys.mustGet(t, testKey, reg.r.Value())
				if n.TTL != 3 {
					t.Errorf("ttl %d; want 3", n.TTL)
				}
				if reg.logs.count(tt.log) != 1 || reg.logs.count("registered") != 2 {
					t.Errorf("want a %q line and a second registered line", tt.log)
				}
			})
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
			synctest.Test(t, func(t *testing.T) {
				keys := newFakeKeys()
				reg := start(t, keys, nil)
				if tt.do != nil {
					keys.write(t, *tt.do)
				}
				if err := reg.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				n, ok := keys.get(t, testKey)
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
		})
	}
}

// TestRegistrarGoneThenUnavailable: the heartbeat finds the record gone,
// and registering again fails for a while; the registrar retries the
// registration, not the heartbeat.
func TestRegistrarGoneThenUnavailable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := newFakeKeys()
		reg := start(t, keys, nil)
		keys.write(t, store.Request{Method: store.MethodDelete, Path: testKey})
		keys.set(func(f *fakeKeys) { f.downForSets = true })
		advance(time.Second)     // heartbeat: gone; registration fails
		advance(time.Second / 8) // retry 1
		advance(time.Second / 4) // retry 2
		if _, ok := keys.get(t, testKey); ok {
			t.Fatal("registered while registrations fail")
		}
		keys.set(func(f *fakeKeys) { f.downForSets = false })
		advance(time.Second / 2) // retry 3
		keys.mustGet(t, testKey, reg.r.Value())
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
	})
}

// TestRegistrarUnavailable: no member answers a heartbeat; the registrar
// retries sooner than a heartbeat, backing off, and resumes.
func TestRegistrarUnavailable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := newFakeKeys()
		reg := start(t, keys, nil)
		n := keys.mustGet(t, testKey, reg.r.Value())
		keys.set(func(f *fakeKeys) { f.down = true })
		advance(time.Second)
		if reg.logs.count("heartbeat failed") != 1 {
			t.Fatal("no heartbeat failed line")
		}
		// Retries after an eighth of the heartbeat interval, then a quarter.
		for _, wait := range []time.Duration{time.Second / 8, time.Second / 4} {
			keys.mu.Lock()
			calls := keys.calls
			keys.mu.Unlock()
			advance(wait - time.Millisecond)
			keys.mu.Lock()
			early := keys.calls != calls
			keys.mu.Unlock()
			advance(time.Millisecond)
			keys.mu.Lock()
			late := keys.calls != calls+1
			keys.mu.Unlock()
			if early || late {
				t.Fatalf("the retry after %v came early or not at all", wait)
			}
		}
		keys.set(func(f *fakeKeys) { f.down = false })
		advance(time.Second / 2)
		if m := keys.mustGet(t, testKey, reg.r.Value()); m.ModifiedIndex <= n.ModifiedIndex {
			t.Fatal("no refresh after the cluster came back")
		}
		if reg.logs.count("heartbeats resumed") != 1 {
			t.Fatal("no heartbeats resumed line")
		}
	})
}

func TestRegistrarUnavailableAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := newFakeKeys()
		keys.down = true
		reg := start(t, keys, nil)
		if _, ok := keys.get(t, testKey); ok || reg.logs.count("registration failed") != 1 {
			t.Fatal("want no record and a registration failed line")
		}
		keys.set(func(f *fakeKeys) { f.down = false })
		advance(time.Second / 8)
		keys.mustGet(t, testKey, reg.r.Value())
	})
}

func TestRegistrarRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := newFakeKeys()
		// A directory at the key: a PUT of a value there is etcd error 102.
		keys.write(t, store.Request{Method: store.MethodPut, Path: testKey, Dir: true})
		r, err := discovery.NewRegistrar(config(keys, &logBuf{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		err = r.Run(context.Background())
		var se *store.Error
		if !errors.As(err, &se) || se.ErrorCode != store.EcodeNotFile {
			t.Fatalf("Run: %v; want etcd error 102", err)
		}
	})
}

func TestRegistrarDefaultJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := newFakeKeys()
		reg := start(t, keys, func(cfg *discovery.RegistrarConfig) {
			cfg.TTL = 30 * time.Second
			cfg.Jitter = nil
		})
		registered := time.Now()
		advance(55 * time.Second)
		keys.mu.Lock()
		beats := append([]time.Time{registered}, keys.refreshes...)
		keys.mu.Unlock()
		if len(beats) < 5 {
			t.Fatalf("%d heartbeats in 55s", len(beats)-1)
		}
		seen := map[time.Duration]bool{}
		for i := 1; i < len(beats); i++ {
			d := beats[i].Sub(beats[i-1])
			if d < 9*time.Second || d >= 11*time.Second {
				t.Fatalf("heartbeat after %v; want 10s ± 10%%", d)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Error("the same wait every time: no jitter")
		}
		_ = reg.stop()
	})
}

func TestNewRegistrarErrors(t *testing.T) {
	ok := discovery.RegistrarConfig{
		Keys:   newFakeKeys(),
		Key:    testKey,
		Record: testRecord,
		TTL:    10 * time.Second,
	}
	tests := []struct {
		name string
		mod  func(*discovery.RegistrarConfig)
		err  string
	}{
		{"valid", func(*discovery.RegistrarConfig) {}, ""},
		{"no client", func(c *discovery.RegistrarConfig) { c.Keys = nil }, "Keys is required"},
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
	if got := discovery.RequestTimeout(10 * time.Second); got != 2500*time.Millisecond {
		t.Errorf("RequestTimeout(10s) = %v; want 2.5s", got)
	}
}
