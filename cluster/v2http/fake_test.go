package v2http

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/store"
)

// testNow is the fake clock of the tests: the leader's time for writes and
// the handler's Now for reads.
var testNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const testClusterID = "cdf818194e3a8c32"

// fakeCluster is a one-node Cluster on a real store: Propose applies at
// once with the fake clock, ReadBarrier succeeds unless told otherwise.
type fakeCluster struct {
	st *store.Store

	mu         sync.Mutex
	now        time.Time
	status     cluster.Status
	members    []cluster.Member
	barrierErr error
	proposeErr error

	barriers atomic.Int64
}

var _ Cluster = (*fakeCluster)(nil)

func newFakeCluster(cfg store.Config) *fakeCluster {
	return &fakeCluster{
		st:  store.New(cfg),
		now: testNow,
		status: cluster.Status{
			ID: 1, Name: "node1", ClusterID: 0xcdf818194e3a8c32,
			State: "StateLeader", LeaderID: 1, Term: 7, CommitIndex: 42, AppliedIndex: 42,
			StartTime:       time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC),
			LeaderStartTime: time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC),
		},
		members: []cluster.Member{
			{ID: 2, Name: "", PeerURLs: []string{"https://10.0.0.2:7001"}},
			{ID: 1, Name: "node1", PeerURLs: []string{"https://10.0.0.1:7001"}, ClientURLs: []string{"https://10.0.0.1:4001"}},
		},
	}
}

func (f *fakeCluster) Store() *store.Store { return f.st }

func (f *fakeCluster) Propose(ctx context.Context, r *store.Request) (*store.Event, error) {
	f.mu.Lock()
	now, err := f.now, f.proposeErr
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.st.Apply(r, now)
}

func (f *fakeCluster) ReadBarrier(ctx context.Context) error {
	f.barriers.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.barrierErr
}

func (f *fakeCluster) Status() cluster.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeCluster) Members() []cluster.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members
}

func (f *fakeCluster) set(fn func(f *fakeCluster)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// put writes straight to the store (no HTTP), as another client would.
func (f *fakeCluster) put(t testing.TB, key, value string) *store.Event {
	t.Helper()
	ev, err := f.st.Apply(&store.Request{Method: store.MethodPut, Path: key, Value: value}, testNow)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return ev
}

// newTestHandler returns a handler on a fresh fake cluster; mod adjusts the
// config before New.
func newTestHandler(t testing.TB, scfg store.Config, mod func(*Config)) (*Handler, *fakeCluster) {
	t.Helper()
	fc := newFakeCluster(scfg)
	cfg := Config{Cluster: fc, Now: func() time.Time { return testNow }, CairnVersion: "test-1"}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h, fc
}

// result is a response as the client sees it: the headers are those sent
// with the status line, not later additions to the header map.
type result struct {
	Code   int
	Body   *bytes.Buffer
	header http.Header
}

func (r *result) Header() http.Header { return r.header }

// serve serves r through h.
func serve(h http.Handler, r *http.Request) *result {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return &result{Code: w.Code, Body: w.Body, header: w.Result().Header}
}

// do serves one request through h. A body is sent urlencoded unless a
// Content-Type is given.
func do(h http.Handler, method, target, body string, hdr ...string) *result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return serve(h, r)
}

// waitTimeout bounds every poll of these tests: generous, as a loaded CI
// machine running -race is slow, and never reached when all is well.
const waitTimeout = 10 * time.Second

// errBody is the etcd error body for code, cause and index.
func errBody(code int, cause string, index uint64) string {
	return string(store.NewError(code, cause, index).MarshalBody())
}

func checkResponse(t testing.TB, w *result, code int, body string) {
	t.Helper()
	if w.Code != code || w.Body.String() != body {
		t.Fatalf("got %d %q\nwant %d %q", w.Code, w.Body.String(), code, body)
	}
}
