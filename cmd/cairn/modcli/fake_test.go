package modcli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
)

// fakeModules is the lock and leader modules of BRIEF's contract, in
// memory, shared by the fake members of a test: queues of entries with
// TTLs, the holder the lowest index, blocking acquisitions that give up at
// timeout= (500, plain text) or when the client leaves (the entry goes),
// renewals by index or value, and the leader's wait=true.
type fakeModules struct {
	mu      sync.Mutex
	index   uint64
	queues  map[string][]*fakeEntry // "lock/<name>", "leader/<name>"
	renewed map[string]int          // renewals of an existing entry, by queue
	changed chan struct{}           // closed and replaced at each change
}

type fakeEntry struct {
	index   uint64
	value   string
	expires time.Time
}

func newFakeModules() *fakeModules {
	return &fakeModules{queues: map[string][]*fakeEntry{}, renewed: map[string]int{}, changed: make(chan struct{})}
}

// changedLocked wakes the waiters.
func (f *fakeModules) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// queueLocked is the queue q without its expired entries.
func (f *fakeModules) queueLocked(q string) []*fakeEntry {
	entries, now, kept := f.queues[q], time.Now(), 0
	for _, e := range entries {
		if now.Before(e.expires) {
			entries[kept] = e
			kept++
		}
	}
	if kept != len(entries) {
		f.queues[q] = entries[:kept]
		f.changedLocked()
	}
	return f.queues[q]
}

func (f *fakeModules) findLocked(q string, index uint64, value string) *fakeEntry {
	for _, e := range f.queueLocked(q) {
		if (index != 0 && e.index == index) || (index == 0 && e.value == value) {
			return e
		}
	}
	return nil
}

func (f *fakeModules) removeLocked(q string, e *fakeEntry) {
	entries := f.queues[q]
	for i, x := range entries {
		if x == e {
			f.queues[q] = append(entries[:i:i], entries[i+1:]...)
			f.changedLocked()
			return
		}
	}
}

// holder is the value and index of q's holder ("" and 0: none).
func (f *fakeModules) holder(q string) (string, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if entries := f.queueLocked(q); len(entries) > 0 {
		return entries[0].value, entries[0].index
	}
	return "", 0
}

// queue is the values of q's entries, in order.
func (f *fakeModules) queue(q string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var vs []string
	for _, e := range f.queueLocked(q) {
		vs = append(vs, e.value)
	}
	return vs
}

// add queues an entry of another client (that never renews) and returns
// its index.
func (f *fakeModules) add(q, value string, ttl time.Duration) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.queueLocked(q)
	f.queues[q] = append(f.queues[q], &fakeEntry{index: f.index, value: value, expires: time.Now().Add(ttl)})
	f.changedLocked()
	return f.index
}

// remove deletes the entry of value from q, as an operator's DELETE of
// its key would.
func (f *fakeModules) remove(q, value string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.findLocked(q, 0, value); e != nil {
		f.removeLocked(q, e)
		return true
	}
	return false
}

func notFound(w http.ResponseWriter, cause string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, `{"errorCode":100,"message":"Key not found","cause":%q,"index":0}`, cause)
}

func badRequest(w http.ResponseWriter, code int, cause string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"errorCode":%d,"message":"bad request","cause":%q,"index":0}`, code, cause)
}

func (f *fakeModules) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/mod/v2/")
	kind, name, _ := strings.Cut(rest, "/")
	if !ok || (kind != "lock" && kind != "leader") || name == "" {
		http.NotFound(w, r)
		return
	}
	q := kind + "/" + name
	p := r.URL.Query()
	ttl, _ := strconv.Atoi(p.Get("ttl"))
	switch {
	case kind == "lock" && r.Method == http.MethodPost:
		f.acquire(w, r, q, p.Get("value"), ttl, p.Get("timeout"))
	case kind == "leader" && r.Method == http.MethodPut:
		f.acquire(w, r, q, p.Get("name"), ttl, p.Get("timeout"))
	case kind == "lock" && r.Method == http.MethodPut:
		index, _ := strconv.ParseUint(p.Get("index"), 10, 64)
		f.mu.Lock()
		defer f.mu.Unlock()
		e := f.findLocked(q, index, p.Get("value"))
		if e == nil {
			notFound(w, "/_mod/"+q)
			return
		}
		e.expires = time.Now().Add(time.Duration(ttl) * time.Second)
		f.renewed[q]++
	case r.Method == http.MethodDelete:
		index, _ := strconv.ParseUint(p.Get("index"), 10, 64)
		value := p.Get("value")
		if kind == "leader" {
			value = p.Get("name")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		e := f.findLocked(q, index, value)
		if e == nil {
			notFound(w, "/_mod/"+q)
			return
		}
		f.removeLocked(q, e)
	case r.Method == http.MethodGet && kind == "leader" && p.Get("wait") == "true":
		f.waitLeader(w, r, q)
	case r.Method == http.MethodGet:
		f.mu.Lock()
		defer f.mu.Unlock()
		entries, ok := f.queues[q]
		if !ok {
			notFound(w, "/_mod/"+q)
			return
		}
		entries = f.queueLocked(q)
		if len(entries) == 0 {
			return
		}
		if p.Get("field") == "index" {
			fmt.Fprint(w, entries[0].index)
			return
		}
		io.WriteString(w, entries[0].value)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// acquire is a lock's POST or a candidate's PUT: it queues (or rejoins)
// the entry of value and answers its index once it is first.
func (f *fakeModules) acquire(w http.ResponseWriter, r *http.Request, q, value string, ttlSeconds int, timeout string) {
	if ttlSeconds <= 0 {
		badRequest(w, 202, "Acquire")
		return
	}
	if value == "" {
		value = "-"
	}
	ttl := time.Duration(ttlSeconds) * time.Second
	var deadline <-chan time.Time
	if timeout != "" {
		n, err := strconv.Atoi(timeout)
		if err != nil {
			badRequest(w, 205, "Acquire")
			return
		}
		deadline = time.After(time.Duration(n) * time.Second)
	}
	f.mu.Lock()
	e := f.findLocked(q, 0, value)
	if e == nil {
		f.index++
		e = &fakeEntry{index: f.index, value: value}
		f.queues[q] = append(f.queues[q], e)
		f.changedLocked()
	} else {
		f.renewed[q]++
	}
	e.expires = time.Now().Add(ttl)
	tick := time.NewTicker(20 * time.Millisecond) // expiries are noticed at a tick
	defer tick.Stop()
	for {
		entries := f.queueLocked(q)
		if len(entries) > 0 && entries[0] == e {
			f.mu.Unlock()
			fmt.Fprint(w, e.index)
			return
		}
		if !slicesContains(entries, e) {
			// Deleted while waiting: queue it again, as a new entry.
			f.index++
			e = &fakeEntry{index: f.index, value: value, expires: time.Now().Add(ttl)}
			f.queues[q] = append(f.queues[q], e)
			f.changedLocked()
			continue
		}
		if timeout == "0" {
			f.removeLocked(q, e)
			f.mu.Unlock()
			http.Error(w, "failed to acquire lock", http.StatusInternalServerError)
			return
		}
		e.expires = time.Now().Add(ttl) // a waiter's entry lives while it waits
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline:
			f.mu.Lock()
			f.removeLocked(q, e)
			f.mu.Unlock()
			http.Error(w, "lock watch closed: timeout", http.StatusInternalServerError)
			return
		case <-r.Context().Done():
			if m, _ := r.Context().Value(memberKey{}).(*fakeMember); m != nil && m.dead.Load() {
				return // a member that died deletes nothing
			}
			f.mu.Lock()
			f.removeLocked(q, e)
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
	}
}

// memberKey is the request context key of the fakeMember serving it.
type memberKey struct{}

func slicesContains(entries []*fakeEntry, e *fakeEntry) bool {
	for _, x := range entries {
		if x == e {
			return true
		}
	}
	return false
}

// waitLeader answers the leader once it is another one than at the start.
func (f *fakeModules) waitLeader(w http.ResponseWriter, r *http.Request, q string) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	f.mu.Lock()
	leader := func() string { // an election never held has none, as on a member
		if entries := f.queueLocked(q); len(entries) > 0 {
			return entries[0].value
		}
		return ""
	}
	start := leader()
	for {
		if now := leader(); now != start {
			f.mu.Unlock()
			io.WriteString(w, now)
			return
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-tick.C:
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
}

// fakeMember is one member serving the fake modules; while down it answers
// 503 with an etcd error, as a member without a leader does.
type fakeMember struct {
	srv  *httptest.Server
	down atomic.Bool
	dead atomic.Bool // killed: it answers 503 and deletes nothing
	// requests counts the requests it served, by "METHOD kind".
	mu       sync.Mutex
	requests map[string]int
}

// kill ends the member's connections as a SIGKILL would: what waited on
// it stays queued, and it answers nothing more (503).
func (m *fakeMember) kill() {
	m.dead.Store(true)
	m.down.Store(true)
	m.srv.CloseClientConnections()
}

func (m *fakeMember) count(what string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests[what]
}

// fakeCluster starts n fake members over TLS and returns them and a
// client of all of them.
func fakeCluster(t *testing.T, n int) (*fakeModules, []*fakeMember, *v2client.Client) {
	t.Helper()
	f := newFakeModules()
	var (
		members []*fakeMember
		eps     []string
		pool    = x509.NewCertPool()
	)
	for range n {
		m := &fakeMember{requests: map[string]int{}}
		m.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			kind, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/mod/v2/"), "/")
			m.mu.Lock()
			m.requests[r.Method+" "+kind]++
			m.mu.Unlock()
			if m.down.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"errorCode":300,"message":"Raft Internal Error","cause":"no leader","index":0}`)
				return
			}
			f.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), memberKey{}, m)))
		}))
		m.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		m.srv.StartTLS()
		t.Cleanup(m.srv.Close)
		pool.AddCert(m.srv.Certificate())
		members = append(members, m)
		eps = append(eps, m.srv.URL)
	}
	c, err := v2client.New(v2client.Config{Endpoints: eps, TLS: &tls.Config{RootCAs: pool}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return f, members, c
}

// syncBuffer is a bytes buffer safe for a command's output copier and the
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is an Env whose output and log go to buffers and whose signals
// the test sends.
func testEnv(t *testing.T) (Env, *syncBuffer, chan<- os.Signal) {
	t.Helper()
	out, logs := &syncBuffer{}, &syncBuffer{}
	sigs := make(chan os.Signal, 4)
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("log:\n%s\noutput:\n%s", logs.String(), out.String())
		}
	})
	return Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, Environ: []string{"PATH=" + os.Getenv("PATH")},
		Signals: sigs, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, out, sigs
}
