package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// t0 is the fake clock's start; every store write passes its time.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

const sec = time.Second

func at(d time.Duration) time.Time { return t0.Add(d) }

const dir = "/skydns/internal/cairn"

// rec is a record value for host:port.
func rec(host string, port int) string { return fmt.Sprintf(`{"host":%q,"port":%d}`, host, port) }

// req builders.
func set(key, value string) store.Request {
	return store.Request{Method: store.MethodPut, Path: dir + key, Value: value}
}
func setTTL(key, value string, ttl uint64) store.Request {
	r := set(key, value)
	r.HasTTL, r.TTL = true, ttl
	return r
}
func mkdirTTL(key string, ttl uint64) store.Request {
	return store.Request{Method: store.MethodPut, Path: dir + key, Dir: true, HasTTL: true, TTL: ttl}
}
func refresh(key string, ttl uint64, dirToo bool) store.Request {
	return store.Request{Method: store.MethodPut, Path: dir + key, Dir: dirToo, PrevExist: store.PrevExistTrue, Refresh: true, HasTTL: true, TTL: ttl}
}
func rmrf(key string) store.Request {
	return store.Request{Method: store.MethodDelete, Path: dir + key, Recursive: true}
}

func apply(t testing.TB, st *store.Store, now time.Time, reqs ...store.Request) {
	t.Helper()
	for i := range reqs {
		if _, err := st.Apply(&reqs[i], now); err != nil {
			t.Fatalf("Apply %+v: %v", reqs[i], err)
		}
	}
}

// running returns an index of st whose Run goroutine ends with the test.
func running(t testing.TB, st *store.Store) *Index {
	t.Helper()
	x := NewIndex(st, Config{}, func() time.Time { return t0 })
	start(t, x)
	return x
}

func start(t testing.TB, x *Index) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
}

// synced waits until x has applied everything st holds: it writes a marker
// under the prefix (not a record, so never indexed) and polls for it.
func synced(t testing.TB, st *store.Store, x *Index) {
	t.Helper()
	e, err := st.Set(dir+"/_sync", false, "", store.TTLOptions{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Equality, not >=: after a restore the store's index may go back.
	poll.Until(t, 10*time.Second, fmt.Sprintf("the index to apply the store's index %d", e.Index()), func() bool {
		return x.stats.applied.Load() == e.Index()
	})
}

// show summarises instances as sorted "name host:port +expires" strings,
// expires as an offset from t0.
func show(ins []Instance) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		s := fmt.Sprintf("%s %s:%d", in.Name, in.Record.Host, in.Record.Port)
		if !in.Expires.IsZero() {
			s += fmt.Sprintf(" +%v", in.Expires.Sub(t0))
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestIndexFollowsStore: each step writes to the store and checks the whole
// index (a lookup of the zone apex) once the index caught up.
func TestIndexFollowsStore(t *testing.T) {
	st := store.New(store.Config{})
	apply(t, st, t0, setTTL("/web/web-1", rec("10.0.0.1", 80), 10))
	x := running(t, st)
	steps := []struct {
		name string
		now  time.Duration
		reqs []store.Request
		exp  bool // run an expiry sweep at now
		want []string
	}{
		{name: "built from the store",
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +10s"}},
		{name: "set without ttl",
			reqs: []store.Request{set("/web/web-2", rec("10.0.0.2", 80))},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +10s", "web-2.web.cairn.internal. 10.0.0.2:80"}},
		{name: "invalid values are ignored",
			reqs: []store.Request{set("/web/bad", "not json"), set("/web/port", `{"host":"h","port":70000}`)},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +10s", "web-2.web.cairn.internal. 10.0.0.2:80"}},
		{name: "an invalid value drops the instance",
			reqs: []store.Request{set("/web/web-2", "{}")},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +10s"}},
		{name: "update and compare-and-swap",
			reqs: []store.Request{
				set("/web/web-2", rec("10.0.0.2", 80)),
				{Method: store.MethodPut, Path: dir + "/web/web-2", PrevExist: store.PrevExistTrue, Value: rec("10.0.0.2", 81)},
				{Method: store.MethodPut, Path: dir + "/web/web-2", PrevValue: rec("10.0.0.2", 81), Value: rec("10.0.0.2", 82)},
			},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +10s", "web-2.web.cairn.internal. 10.0.0.2:82"}},
		{name: "a refresh moves Expires",
			now:  5 * sec,
			reqs: []store.Request{refresh("/web/web-1", 20, false)},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +25s", "web-2.web.cairn.internal. 10.0.0.2:82"}},
		{name: "a set refresh too",
			now:  6 * sec,
			reqs: []store.Request{{Method: store.MethodPut, Path: dir + "/web/web-1", Refresh: true, HasTTL: true, TTL: 20}},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +26s", "web-2.web.cairn.internal. 10.0.0.2:82"}},
		{name: "delete",
			reqs: []store.Request{{Method: store.MethodDelete, Path: dir + "/web/web-2"}},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +26s"}},
		{name: "compare-and-delete",
			reqs: []store.Request{set("/web/web-3", rec("10.0.0.3", 80)), {Method: store.MethodDelete, Path: dir + "/web/web-3", PrevValue: rec("10.0.0.3", 80)}},
			want: []string{"web-1.web.cairn.internal. 10.0.0.1:80 +26s"}},
		{name: "expire",
			now: 26 * sec, exp: true,
			want: nil},
		{name: "a directory's TTL bounds Expires",
			now:  30 * sec,
			reqs: []store.Request{mkdirTTL("/db", 30), set("/db/db-1", rec("10.0.1.1", 5432)), setTTL("/db/db-2", rec("10.0.1.2", 5432), 10)},
			want: []string{"db-1.db.cairn.internal. 10.0.1.1:5432 +1m0s", "db-2.db.cairn.internal. 10.0.1.2:5432 +40s"}},
		{name: "refreshing the directory moves it",
			now:  40 * sec,
			reqs: []store.Request{refresh("/db", 5, true)},
			want: []string{"db-1.db.cairn.internal. 10.0.1.1:5432 +45s", "db-2.db.cairn.internal. 10.0.1.2:5432 +40s"}},
		{name: "the directory expires with its instances",
			now: 45 * sec, exp: true,
			want: nil},
		{name: "hidden segments are indexed",
			reqs: []store.Request{set("/_tcp/_web/x", rec("10.0.2.1", 80)), set("/web/_w1", rec("10.0.2.2", 80))},
			want: []string{"_w1.web.cairn.internal. 10.0.2.2:80", "x._web._tcp.cairn.internal. 10.0.2.1:80"}},
		{name: "deleting a directory removes what is below it",
			reqs: []store.Request{rmrf("/_tcp")},
			want: []string{"_w1.web.cairn.internal. 10.0.2.2:80"}},
		{name: "keys differing in case are instances of one name",
			reqs: []store.Request{set("/Web/W1", rec("10.0.3.1", 80)), set("/web/w1", rec("10.0.3.2", 80))},
			want: []string{"_w1.web.cairn.internal. 10.0.2.2:80", "w1.web.cairn.internal. 10.0.3.1:80", "w1.web.cairn.internal. 10.0.3.2:80"}},
		{name: "and go one by one",
			reqs: []store.Request{rmrf("/Web")},
			want: []string{"_w1.web.cairn.internal. 10.0.2.2:80", "w1.web.cairn.internal. 10.0.3.2:80"}},
		{name: "deleting an ancestor of the prefix removes everything",
			reqs: []store.Request{set("/a/b", rec("10.0.4.1", 1)), {Method: store.MethodDelete, Path: "/skydns", Recursive: true}},
			want: nil},
		{name: "and it starts again",
			reqs: []store.Request{set("/a", rec("10.0.5.2", 2))},
			want: []string{"a.cairn.internal. 10.0.5.2:2"}},
		{name: "outside the zone is ignored",
			reqs: []store.Request{{Method: store.MethodPut, Path: "/skydns/internal/cairnx/a", Value: rec("10.0.6.1", 1)}, {Method: store.MethodPut, Path: "/skydns/config", Value: "{}"}},
			want: []string{"a.cairn.internal. 10.0.5.2:2"}},
	}
	for _, s := range steps {
		apply(t, st, at(s.now), s.reqs...)
		if s.exp {
			st.DeleteExpiredKeys(at(s.now))
		}
		synced(t, st, x)
		if got := show(x.Lookup("cairn.internal.")); !slices.Equal(got, s.want) {
			t.Fatalf("%s:\ngot  %q\nwant %q", s.name, got, s.want)
		}
		if got := x.Len(); got != len(s.want) {
			t.Fatalf("%s: Len %d, want %d", s.name, got, len(s.want))
		}
	}
	if n := x.stats.rebuilds.Load(); n != 1 {
		t.Errorf("%d rebuilds, want 1 (the first build)", n)
	}
}

// fixture is a store with a few services and the index built from it.
func fixture(t testing.TB) *Index {
	st := store.New(store.Config{})
	apply(t, st, t0,
		set("/web/web-1", rec("10.0.0.1", 80)),
		set("/web/web-2", rec("10.0.0.2", 80)),
		set("/web/web-3", rec("2001:db8::3", 80)),
		set("/prod/web/p1", rec("10.0.1.1", 80)),
		set("/prod/db/d1", rec("10.0.0.1", 5432)), // shares web-1's address
		set("/staging/web/s1", rec("10.0.2.1", 80)),
		set("/cname/c1", rec("web.example.com", 80)),
		set("/txt/t1", `{"text":"hello"}`),
		set("/empty/dir/bad", "junk"),
	)
	apply(t, st, t0, store.Request{Method: store.MethodPut, Path: dir + "/emptier", Dir: true})
	return NewIndex(st, Config{}, func() time.Time { return t0 })
}

func TestIndexLookup(t *testing.T) {
	x := fixture(t)
	tests := []struct {
		name   string
		want   []string // hosts, sorted
		exists bool
	}{
		{"web-1.web.cairn.internal.", []string{"10.0.0.1"}, true},
		{"WEB-1.Web.Cairn.Internal.", []string{"10.0.0.1"}, true},
		{"web.cairn.internal.", []string{"10.0.0.1", "10.0.0.2", "2001:db8::3"}, true},
		{"prod.cairn.internal.", []string{"10.0.0.1", "10.0.1.1"}, true},
		{"*.prod.cairn.internal.", []string{"10.0.0.1", "10.0.1.1"}, true},
		{"web.*.cairn.internal.", []string{"10.0.1.1", "10.0.2.1"}, true},
		{"*.web.*.cairn.internal.", []string{"10.0.1.1", "10.0.2.1"}, true},
		{"*.*.cairn.internal.", []string{"", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.2.1", "2001:db8::3", "web.example.com"}, true},
		{"x.*.cairn.internal.", nil, false},
		{"cairn.internal.", []string{"", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.2.1", "2001:db8::3", "web.example.com"}, true},
		{"t1.txt.cairn.internal.", []string{""}, true},
		{"missing.cairn.internal.", nil, false},
		{"web-4.web.cairn.internal.", nil, false},
		{"sub.web-1.web.cairn.internal.", nil, false},
		{"empty.cairn.internal.", nil, false},   // only an invalid value below
		{"emptier.cairn.internal.", nil, false}, // an empty directory
		{"web.other.", nil, false},
		{"internal.", nil, false},
		{"web.cairn.internal", nil, false}, // not fully qualified
		{"a..cairn.internal.", nil, false},
	}
	for _, tt := range tests {
		var got []string
		for _, in := range x.Lookup(tt.name) {
			got = append(got, in.Record.Host)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Lookup(%q) = %q, want %q", tt.name, got, tt.want)
		}
		if got := x.Exists(tt.name); got != tt.exists {
			t.Errorf("Exists(%q) = %v, want %v", tt.name, got, tt.exists)
		}
	}
	got := x.Lookup("web-1.web.cairn.internal.")[0]
	if got.Key != dir+"/web/web-1" || got.Name != "web-1.web.cairn.internal." || got.Record != (Record{Host: "10.0.0.1", Port: 80}) || !got.Expires.IsZero() {
		t.Errorf("instance %+v", got)
	}
}

// TestIndexLookupShared: a lookup's result stays as it was when the index
// changes (the cache is replaced, never modified), and a wildcard's merged
// result never writes into a shared one.
func TestIndexLookupShared(t *testing.T) {
	st := store.New(store.Config{})
	apply(t, st, t0, set("/a/web/1", rec("10.0.0.1", 1)), set("/b/web/2", rec("10.0.0.2", 2)))
	x := running(t, st)
	a := x.Lookup("a.cairn.internal.")
	all := x.Lookup("cairn.internal.")
	wild := x.Lookup("web.*.cairn.internal.")
	if len(a) != 1 || len(all) != 2 || len(wild) != 2 {
		t.Fatalf("lookups: %v %v %v", a, all, wild)
	}
	apply(t, st, t0, set("/a/web/1", rec("10.0.0.9", 9)), set("/a/web/3", rec("10.0.0.3", 3)))
	synced(t, st, x)
	if show(a)[0] != "1.web.a.cairn.internal. 10.0.0.1:1" || len(x.Lookup("a.cairn.internal.")) != 2 {
		t.Fatalf("old result changed: %q", show(a))
	}
	if got := show(x.Lookup("web.*.cairn.internal.")); len(got) != 3 || len(x.Lookup("b.cairn.internal.")) != 1 {
		t.Fatalf("wildcard: %q", got)
	}
}

func TestIndexApexRecord(t *testing.T) {
	st := store.New(store.Config{})
	apply(t, st, t0, set("", rec("10.0.5.1", 1)))
	x := NewIndex(st, Config{}, nil)
	if got := show(x.Lookup("cairn.internal.")); !slices.Equal(got, []string{"cairn.internal. 10.0.5.1:1"}) {
		t.Fatalf("got %q", got)
	}
	if x.Exists("a.cairn.internal.") || !x.Exists("cairn.internal.") {
		t.Fatal("Exists")
	}
}

func TestIndexByIP(t *testing.T) {
	x := fixture(t)
	tests := []struct {
		ip   string
		want []string
	}{
		{"10.0.0.1", []string{"d1.db.prod.cairn.internal.", "web-1.web.cairn.internal."}},
		{"::ffff:10.0.0.1", []string{"d1.db.prod.cairn.internal.", "web-1.web.cairn.internal."}},
		{"2001:db8::3", []string{"web-3.web.cairn.internal."}},
		{"10.9.9.9", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, in := range x.ByIP(netip.MustParseAddr(tt.ip)) {
			got = append(got, in.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("ByIP(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

// TestIndexRestore: a snapshot restored into the store (as raft does on a
// follower that fell behind) replaces the index.
func TestIndexRestore(t *testing.T) {
	st := store.New(store.Config{})
	apply(t, st, t0, set("/web/a", rec("10.0.0.1", 1)), setTTL("/web/b", rec("10.0.0.2", 2), 60))
	var snap bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	x := running(t, st)
	apply(t, st, t0, rmrf("/web"), set("/db/c", rec("10.0.0.3", 3)))
	synced(t, st, x)
	if got := show(x.Lookup("cairn.internal.")); !slices.Equal(got, []string{"c.db.cairn.internal. 10.0.0.3:3"}) {
		t.Fatalf("before restore: %q", got)
	}
	if err := st.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	synced(t, st, x)
	want := []string{"a.web.cairn.internal. 10.0.0.1:1", "b.web.cairn.internal. 10.0.0.2:2 +1m0s"}
	if got := show(x.Lookup("cairn.internal.")); !slices.Equal(got, want) {
		t.Fatalf("after restore: %q, want %q", got, want)
	}
	if n := x.stats.rebuilds.Load(); n != 2 {
		t.Errorf("%d rebuilds, want 2", n)
	}
	// It keeps following.
	apply(t, st, t0, rmrf("/web/a"))
	synced(t, st, x)
	if got := show(x.Lookup("cairn.internal.")); !slices.Equal(got, want[1:]) {
		t.Fatalf("after a delete: %q", got)
	}
}

// TestIndexFallsBehind: with a watch buffer of 2, writes made before Run
// overflow the watcher; the index resumes from history, and rebuilds when
// the history no longer reaches back.
func TestIndexFallsBehind(t *testing.T) {
	tests := []struct {
		name              string
		history           int
		resumes, rebuilds int64
	}{
		{"resume from history", 0, 3, 1},
		{"history cleared: rebuild", 3, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := store.New(store.Config{WatchBuffer: 2, HistorySize: tt.history})
			x := NewIndex(st, Config{}, nil)
			var want []string
			for i := range 7 {
				apply(t, st, t0, set(fmt.Sprintf("/web/w%d", i), rec("10.0.0.1", i)))
				want = append(want, fmt.Sprintf("w%d.web.cairn.internal. 10.0.0.1:%d", i, i))
			}
			start(t, x)
			synced(t, st, x)
			if got := show(x.Lookup("web.cairn.internal.")); !slices.Equal(got, want) {
				t.Fatalf("got %q\nwant %q", got, want)
			}
			if r, b := x.stats.resumes.Load(), x.stats.rebuilds.Load(); r != tt.resumes || b != tt.rebuilds {
				t.Errorf("%d resumes, %d rebuilds; want %d, %d", r, b, tt.resumes, tt.rebuilds)
			}
		})
	}
}

// TestIndexConcurrent: lookups race with a stream of writes (run with
// -race); every lookup sees a consistent service.
func TestIndexConcurrent(t *testing.T) {
	st := store.New(store.Config{})
	x := running(t, st)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, in := range x.Lookup("web.cairn.internal.") {
					if !strings.HasSuffix(in.Name, ".web.cairn.internal.") || in.Record.Host == "" {
						t.Errorf("bad instance %+v", in)
						return
					}
				}
				x.Exists("w1.web.cairn.internal.")
				x.ByIP(netip.MustParseAddr("10.0.0.1"))
			}
		})
	}
	for i := range 500 {
		apply(t, st, at(time.Duration(i)*time.Millisecond), setTTL(fmt.Sprintf("/web/w%d", i%20), rec("10.0.0.1", i), 1))
		if i%50 == 0 {
			st.DeleteExpiredKeys(at(time.Duration(i) * time.Millisecond))
		}
	}
	synced(t, st, x)
	close(stop)
	wg.Wait()
	if n := len(x.Lookup("web.cairn.internal.")); n != 20 {
		t.Errorf("%d instances, want 20", n)
	}
}

// TestIndexKeepsOversizedStoredRecords: a record stored before Validate
// bounded text and group (the store takes any value outside the API) stays
// answered, its text and group cut to their bounds, rather than vanishing
// from DNS after an upgrade.
func TestIndexKeepsOversizedStoredRecords(t *testing.T) {
	st := store.New(store.Config{})
	long := strings.Repeat("x", MaxTextBytes+100)
	apply(t, st, t0,
		set("/old/o1", fmt.Sprintf(`{"host":"10.9.0.1","port":80,"text":%q,"group":%q}`, long, long)),
		set("/bad/b1", `{"host":"10.9.0.2","port":70000}`)) // out of range: still refused
	x := running(t, st)
	synced(t, st, x)
	got := x.Lookup("o1.old.cairn.internal.")
	if len(got) != 1 {
		t.Fatalf("Lookup(o1.old) = %d instances, want 1", len(got))
	}
	if r := got[0].Record; r.Host != "10.9.0.1" || len(r.Text) != MaxTextBytes || len(r.Group) != maxGroup {
		t.Errorf("record host %q, text %d bytes, group %d bytes; want 10.9.0.1, %d, %d", r.Host, len(r.Text), len(r.Group), MaxTextBytes, maxGroup)
	}
	if _, err := ParseRecord(fmt.Sprintf(`{"host":"10.9.0.1","text":%q}`, long)); err == nil {
		t.Error("ParseRecord accepted an oversized text; the API must refuse it")
	}
	if x.Exists("b1.bad.cairn.internal.") {
		t.Error("a record with an out-of-range port is indexed")
	}
}
