package v2http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// startServer serves h on a plain-HTTP test server (TLS is the listener's
// business, not the handler's).
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// openWatch starts a watch request and returns once its headers arrived.
// Cancel the returned function to go away as a client.
func openWatch(t *testing.T, srv *httptest.Server, target string) (*http.Response, *bufio.Reader, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("watch %s: %v", target, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body), cancel
}

// readEvent reads one newline-terminated event of a watch body.
func readEvent(t *testing.T, br *bufio.Reader) store.Event {
	t.Helper()
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read event: %v (got %q)", err, line)
	}
	var ev store.Event
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatalf("decode %q: %v", line, err)
	}
	return ev
}

func eventLine(t *testing.T, ev *store.Event) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestWatchOneShotFromHistory(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	first := fc.put(t, "/w/a", "1")
	fc.put(t, "/w/a", "2")
	fc.put(t, "/other", "x")
	tests := []struct {
		name, target string
		want         *store.Event
	}{
		{"first match from waitIndex", "/v2/keys/w/a?wait=true&waitIndex=1", first},
		{"recursive", "/v2/keys/w?wait=true&recursive=true&waitIndex=1", first},
	}
	for _, tt := range tests {
		w := do(h, "GET", tt.target, "")
		checkResponse(t, w, 200, eventLine(t, tt.want))
		if got := w.Header().Get("X-Etcd-Index"); got != "3" {
			t.Errorf("%s: X-Etcd-Index %q, want the start index 3", tt.name, got)
		}
		if w.Header().Get("X-Raft-Index") != "42" || w.Header().Get("X-Etcd-Cluster-ID") != testClusterID {
			t.Errorf("%s: headers %v", tt.name, w.Header())
		}
	}
	if n := fc.st.WatcherCount(); n != 0 {
		t.Errorf("%d watchers left", n)
	}
}

func TestWatchCleared(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{HistorySize: 2}, nil)
	for i := range 5 {
		fc.put(t, "/k", fmt.Sprint(i))
	}
	w := do(h, "GET", "/v2/keys/k?wait=true&waitIndex=1", "")
	checkResponse(t, w, 400, errBody(401, "the requested history has been cleared [4/1]", 5))
	if w.Header().Get("X-Etcd-Index") != "5" {
		t.Errorf("X-Etcd-Index %q", w.Header().Get("X-Etcd-Index"))
	}
}

func TestWatchOneShotLive(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	srv := startServer(t, h)
	fc.put(t, "/before", "x")
	resp, br, _ := openWatch(t, srv, "/v2/keys/dir?wait=true&recursive=true")
	// The headers arrive before any event (long-poll clients rely on it).
	if resp.StatusCode != 200 || resp.Header.Get("X-Etcd-Index") != "1" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers: %d %v", resp.StatusCode, resp.Header)
	}
	poll.Until(t, waitTimeout, "the watcher", func() bool { return fc.st.WatcherCount() == 1 })
	fc.put(t, "/elsewhere", "x")
	ev := fc.put(t, "/dir/sub/key", "v")
	body, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != eventLine(t, ev) {
		t.Errorf("body %q, want %q", body, eventLine(t, ev))
	}
	poll.Until(t, waitTimeout, "no watchers", func() bool { return fc.st.WatcherCount() == 0 })
}

// TestWatchStreamFromHistory: a stream started at an old waitIndex gets
// every matching event from history, then the live ones (etcd delivers one
// historic event and then nothing, reference §1.3.6).
func TestWatchStreamFromHistory(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	srv := startServer(t, h)
	var want []*store.Event
	for i := range 3 {
		want = append(want, fc.put(t, "/s/k", fmt.Sprint(i)))
		fc.put(t, "/s/other", "x")
	}
	_, br, cancel := openWatch(t, srv, "/v2/keys/s/k?wait=true&stream=true&waitIndex=1")
	for _, ev := range want {
		if got := readEvent(t, br); got.Node.ModifiedIndex != ev.Index() {
			t.Fatalf("got event %d, want %d", got.Node.ModifiedIndex, ev.Index())
		}
	}
	for i := range 3 {
		ev := fc.put(t, "/s/k", fmt.Sprint("live", i))
		line, err := br.ReadString('\n')
		if err != nil || line != eventLine(t, ev) {
			t.Fatalf("live event: %q %v, want %q", line, err, eventLine(t, ev))
		}
	}
	cancel()
	poll.Until(t, waitTimeout, "the watcher to go with its client", func() bool { return fc.st.WatcherCount() == 0 })
}

// TestWatchStreamOverflowFromHistory: more history than the watcher's
// buffer is delivered in full, through store overflow and resume.
func TestWatchStreamOverflowFromHistory(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{WatchBuffer: 2}, nil)
	srv := startServer(t, h)
	for i := range 7 {
		fc.put(t, "/o", fmt.Sprint(i))
	}
	_, br, cancel := openWatch(t, srv, "/v2/keys/o?wait=true&stream=true&waitIndex=1")
	for i := uint64(1); i <= 7; i++ {
		if got := readEvent(t, br); got.Node.ModifiedIndex != i {
			t.Fatalf("event %d, want %d", got.Node.ModifiedIndex, i)
		}
	}
	poll.Until(t, waitTimeout, "the resumed watcher", func() bool { return fc.st.WatcherCount() == 1 })
	ev := fc.put(t, "/o", "live")
	if got := readEvent(t, br); got.Node.ModifiedIndex != ev.Index() {
		t.Fatalf("live event %d, want %d", got.Node.ModifiedIndex, ev.Index())
	}
	cancel()
	poll.Until(t, waitTimeout, "no watchers", func() bool { return fc.st.WatcherCount() == 0 })
}

// gateWriter is a ResponseWriter whose first body write blocks until
// release is closed: a client that stops reading.
type gateWriter struct {
	hdr     http.Header
	flushed chan struct{} // closed at the first Flush (headers out)
	writing chan struct{} // closed when the first Write starts
	release chan struct{}

	mu    sync.Mutex
	code  int
	body  bytes.Buffer
	once1 sync.Once
	once2 sync.Once
}

func newGateWriter() *gateWriter {
	return &gateWriter{hdr: http.Header{}, flushed: make(chan struct{}), writing: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateWriter) Header() http.Header { return g.hdr }
func (g *gateWriter) WriteHeader(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.code = code
}
func (g *gateWriter) Write(b []byte) (int, error) {
	g.once2.Do(func() { close(g.writing) })
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.body.Write(b)
}
func (g *gateWriter) Flush() { g.once1.Do(func() { close(g.flushed) }) }
func (g *gateWriter) lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	lines := strings.SplitAfter(g.body.String(), "\n")
	return lines[:len(lines)-1] // after the last newline: empty
}

// TestWatchStreamSurvivesOverflow: a stream whose client stalls while
// events pile up past the store's buffer loses none of them.
func TestWatchStreamSurvivesOverflow(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{WatchBuffer: 2}, nil)
	gw := newGateWriter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/v2/keys/ov?wait=true&stream=true", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(gw, req)
	}()
	<-gw.flushed
	var want []string
	want = append(want, eventLine(t, fc.put(t, "/ov", "0")))
	<-gw.writing // the handler holds event 1 and is stuck writing it
	for i := 1; i < 8; i++ {
		want = append(want, eventLine(t, fc.put(t, "/ov", fmt.Sprint(i))))
	}
	if n := fc.st.WatcherCount(); n != 0 {
		t.Fatalf("the store kept the stalled watcher (%d); the test needs an overflow", n)
	}
	close(gw.release)
	poll.Until(t, waitTimeout, "8 events", func() bool { return len(gw.lines()) == 8 })
	want = append(want, eventLine(t, fc.put(t, "/ov", "live")))
	poll.Until(t, waitTimeout, "9 events", func() bool { return len(gw.lines()) == 9 })
	if got := gw.lines(); strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
	cancel()
	<-done
	if n := fc.st.WatcherCount(); n != 0 {
		t.Errorf("%d watchers left", n)
	}
}

// TestWatchSurvivesRestore: a snapshot restore closes every store watcher;
// open streams resume from history.
func TestWatchSurvivesRestore(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	srv := startServer(t, h)
	fc.put(t, "/r", "0")
	_, br, _ := openWatch(t, srv, "/v2/keys/r?wait=true&stream=true")
	poll.Until(t, waitTimeout, "the watcher", func() bool { return fc.st.WatcherCount() == 1 })
	var snap bytes.Buffer
	if _, err := fc.st.Snapshot().WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	if err := fc.st.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	ev := fc.put(t, "/r", "after restore")
	if got := readEvent(t, br); got.Node.ModifiedIndex != ev.Index() {
		t.Fatalf("event %d, want %d", got.Node.ModifiedIndex, ev.Index())
	}
	if got := gaugeValue(t, h, "cairn_http_watch_resumes_total"); got != "1" {
		t.Errorf("watch resumes %q, want 1", got)
	}
}

func TestWatchDisconnectRemovesWatcher(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	srv := startServer(t, h)
	for _, target := range []string{"/v2/keys/x?wait=true", "/v2/keys/x?wait=true&stream=true", "/v2/keys/?wait=true&recursive=true"} {
		_, _, cancel := openWatch(t, srv, target)
		poll.Until(t, waitTimeout, "the watcher", func() bool { return fc.st.WatcherCount() == 1 })
		cancel()
		poll.Until(t, waitTimeout, "the watcher to go", func() bool { return fc.st.WatcherCount() == 0 })
	}
	poll.Until(t, waitTimeout, "the watch gauge", func() bool { return gaugeValue(t, h, "cairn_http_watches") == "0" })
}

func TestWatchLimitPerClient(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) { c.MaxWatchersPerClient = 2 })
	srv := startServer(t, h)
	fc.put(t, "/c", "x") // lets an accepted one-shot from index 1 return at once
	_, _, cancel1 := openWatch(t, srv, "/v2/keys/a?wait=true")
	openWatch(t, srv, "/v2/keys/b?wait=true&stream=true")
	poll.Until(t, waitTimeout, "two watchers", func() bool { return fc.st.WatcherCount() == 2 })

	watchFrom := func(remote string) *result {
		r := httptest.NewRequest("GET", "/v2/keys/c?wait=true&waitIndex=1", nil)
		r.RemoteAddr = remote
		return serve(h, r)
	}
	// The test server's client is 127.0.0.1, whatever its port.
	w := watchFrom("127.0.0.1:1")
	checkResponse(t, w, http.StatusTooManyRequests, errBody(209, "too many open watches for this client (limit 2)", 0))
	if w.Header().Get("X-Etcd-Cluster-ID") != testClusterID {
		t.Errorf("headers %v", w.Header())
	}
	// Another client is not affected.
	if w := watchFrom("192.0.2.7:1"); w.Code != 200 {
		t.Errorf("other client: %d %s", w.Code, w.Body)
	}
	// A slot frees when a watch ends.
	cancel1()
	poll.Until(t, waitTimeout, "a free slot", func() bool { return h.watchers.count("addr:127.0.0.1") == 1 })
	if w := watchFrom("127.0.0.1:2"); w.Code != 200 {
		t.Errorf("after a watch ended: %d %s", w.Code, w.Body)
	}
}

// TestWatchLimitPerMember: the cap on all clients' watches together refuses
// the (N+1)th watch, whoever asks, with the same 429 and errorCode 209.
func TestWatchLimitPerMember(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) { c.MaxWatchers = 2 })
	srv := startServer(t, h)
	fc.put(t, "/c", "x")
	_, _, cancel1 := openWatch(t, srv, "/v2/keys/a?wait=true")
	openWatch(t, srv, "/v2/keys/b?wait=true&stream=true")
	poll.Until(t, waitTimeout, "two watchers", func() bool { return fc.st.WatcherCount() == 2 })

	watchFrom := func(remote string) *result {
		r := httptest.NewRequest("GET", "/v2/keys/c?wait=true&waitIndex=1", nil)
		r.RemoteAddr = remote
		return serve(h, r)
	}
	w := watchFrom("192.0.2.7:1") // a client with no watch of its own
	checkResponse(t, w, http.StatusTooManyRequests, errBody(209,
		"too many open watches on this member, all clients together (limit 2); retry later or watch through another member", 0))
	if w.Header().Get("X-Etcd-Cluster-ID") != testClusterID {
		t.Errorf("headers %v", w.Header())
	}
	cancel1()
	poll.Until(t, waitTimeout, "a free slot", func() bool { return h.watchers.count("addr:127.0.0.1") == 1 })
	if w := watchFrom("192.0.2.7:2"); w.Code != 200 {
		t.Errorf("after a watch ended: %d %s", w.Code, w.Body)
	}
}

func TestCloseEndsWatches(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	srv := startServer(t, h)
	_, br, _ := openWatch(t, srv, "/v2/keys/z?wait=true&stream=true")
	poll.Until(t, waitTimeout, "the watcher", func() bool { return fc.st.WatcherCount() == 1 })
	h.Close()
	if b, err := io.ReadAll(br); err != nil || len(b) != 0 {
		t.Fatalf("after Close: %q %v", b, err)
	}
	poll.Until(t, waitTimeout, "no watchers", func() bool { return fc.st.WatcherCount() == 0 })
}

// TestWatchEndsWhenResumeIsCleared: when the events a stalled stream missed
// have left the history, the response ends after what it delivered; the
// client's retry from its last index gets etcd's 401.
func TestWatchEndsWhenResumeIsCleared(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{WatchBuffer: 1, HistorySize: 2}, nil)
	gw := newGateWriter()
	req := httptest.NewRequest("GET", "/v2/keys/gone?wait=true&stream=true", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(gw, req)
	}()
	<-gw.flushed
	first := eventLine(t, fc.put(t, "/gone", "0"))
	<-gw.writing
	second := eventLine(t, fc.put(t, "/gone", "1")) // buffered
	for i := 2; i < 6; i++ {
		fc.put(t, "/gone", fmt.Sprint(i)) // overflow, then out of the history
	}
	close(gw.release)
	<-done
	if got := strings.Join(gw.lines(), ""); got != first+second {
		t.Errorf("delivered %q, want %q", got, first+second)
	}
	w := do(h, "GET", "/v2/keys/gone?wait=true&waitIndex=3", "")
	checkResponse(t, w, 400, errBody(401, "the requested history has been cleared [5/3]", 6))
	if n := fc.st.WatcherCount(); n != 0 {
		t.Errorf("%d watchers left", n)
	}
}
