package store

import (
	"slices"
	"testing"
	"time"
)

// TestTTLLifecycle covers reference §3.2–§3.3: which writes keep, replace or
// drop a TTL. Each row writes /k with ttl 10 at t0, applies op at t0+1s and
// then reads /k at t0+2s; a sweep at t0+1h must expire /k exactly when
// expires is true.
func TestTTLLifecycle(t *testing.T) {
	tests := []struct {
		name    string
		op      Request
		want    string // Get /k at t0+2s
		expires bool
	}{
		{name: "set without ttl drops it",
			op:   put("/k", "w"),
			want: `{"action":"get","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":2}}`},
		{name: "set resending ttl replaces it",
			op:      withTTL(put("/k", "w"), 20),
			want:    `{"action":"get","node":{"key":"/k","value":"w","expiration":"2024-05-06T05:08:30Z","ttl":19,"modifiedIndex":2,"createdIndex":2}}`,
			expires: true},
		{name: "update without ttl makes it permanent",
			op:   Request{Method: MethodPut, Path: "/k", Value: "w", PrevExist: PrevExistTrue},
			want: `{"action":"get","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1}}`},
		{name: "cas without ttl makes it permanent",
			op:   Request{Method: MethodPut, Path: "/k", Value: "w", PrevValue: "v"},
			want: `{"action":"get","node":{"key":"/k","value":"w","modifiedIndex":2,"createdIndex":1}}`},
		{name: "refresh keeps the value and resets the ttl",
			op:      withTTL(Request{Method: MethodPut, Path: "/k", PrevExist: PrevExistTrue, Refresh: true}, 30),
			want:    `{"action":"get","node":{"key":"/k","value":"v","expiration":"2024-05-06T05:08:40Z","ttl":29,"modifiedIndex":2,"createdIndex":1}}`,
			expires: true},
		{name: "update with ttl 0 expires at the next sweep",
			op:      withTTL(Request{Method: MethodPut, Path: "/k", Value: "w", PrevExist: PrevExistTrue}, 0),
			want:    `{"action":"get","node":{"key":"/k","value":"w","expiration":"2024-05-06T05:08:10Z","ttl":-1,"modifiedIndex":2,"createdIndex":1}}`,
			expires: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			mustApply(t, s, t0, withTTL(put("/k", "v"), 10))
			mustApply(t, s, at(sec), tt.op)
			if got := getJSON(t, s, "/k", false, false, at(2*sec)); got != tt.want {
				t.Errorf("Get:\n got %s\nwant %s", got, tt.want)
			}
			_, hasNext := s.NextExpiration()
			evs := s.DeleteExpiredKeys(at(time.Hour))
			if hasNext != tt.expires || (len(evs) == 1) != tt.expires || len(evs) > 1 {
				t.Errorf("NextExpiration set %v, expired %v; want %v", hasNext, keysAndIndexes(evs), tt.expires)
			}
			if wantIndex := uint64(2 + len(evs)); s.Index() != wantIndex {
				t.Errorf("index %d, want %d", s.Index(), wantIndex)
			}
		})
	}
}

// TestTTLZero: ttl=0 (HasTTL with TTL 0) is not "no TTL": the node carries
// its expiration (now, ttl 0 so omitted) and the next sweep removes it
// (reference §3.3).
func TestTTLZero(t *testing.T) {
	s := New(Config{})
	e := mustApply(t, s, t0, withTTL(put("/z", "v"), 0))
	want := `{"action":"set","node":{"key":"/z","value":"v","expiration":"2024-05-06T05:08:09Z","modifiedIndex":1,"createdIndex":1}}`
	if got := marshal(t, e); got != want {
		t.Fatalf("set:\n got %s\nwant %s", got, want)
	}
	if next, ok := s.NextExpiration(); !ok || !next.Equal(t0) {
		t.Fatalf("NextExpiration = %v %v, want %v", next, ok, t0)
	}
	evs := s.DeleteExpiredKeys(t0)
	if got := keysAndIndexes(evs); len(got) != 1 || got[0] != "expire /z@2" {
		t.Fatalf("sweep at t0 = %v, want [expire /z@2]", got)
	}
}

// TestRefreshIsQuiet: a refresh uses an index and a history slot but no
// watcher sees it, live or from history (reference §1.2.4, §7 TTL heartbeats).
func TestRefreshIsQuiet(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, withTTL(put("/k", "v"), 10)) // @1
	one := mustWatch(t, s, "/k", false, false, 0)
	stream := mustWatch(t, s, "/", true, true, 0)

	refresh := withTTL(Request{Method: MethodPut, Path: "/k", PrevExist: PrevExistTrue, Refresh: true}, 10)
	e := mustApply(t, s, at(sec), refresh) // @2
	if !e.Refresh || e.Index() != 2 || s.Index() != 2 {
		t.Fatalf("refresh event %s Refresh=%v, index %d", marshal(t, e), e.Refresh, s.Index())
	}
	if start, last := s.HistoryRange(); start != 1 || last != 2 {
		t.Fatalf("history [%d, %d], want [1, 2]: a refresh takes a slot", start, last)
	}
	for _, w := range []*Watcher{one, stream} {
		if evs, closed := received(w); len(evs) != 0 || closed {
			t.Fatalf("watcher on %s saw %v (closed %v) for a refresh", w.key, keysAndIndexes(evs), closed)
		}
	}
	// A history watch from the refresh's index skips it.
	past := mustWatch(t, s, "/k", false, false, 2)
	mustApply(t, s, at(2*sec), put("/k", "w")) // @3
	for _, w := range []*Watcher{one, stream, past} {
		evs, _ := received(w)
		if got := keysAndIndexes(evs); len(got) != 1 || got[0] != "set /k@3" {
			t.Errorf("watcher on %s got %v, want [set /k@3]", w.key, got)
		}
	}
}

// TestHiddenNodes: a node whose own name starts with '_' is left out of
// listings, recursive or not, at every level; it can be read and written
// directly (reference §1.2.1, §3.7).
func TestHiddenNodes(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0,
		put("/_top", "t"),      // @1
		put("/a/_h", "h"),      // @2 (creates /a)
		put("/a/v", "v"),       // @3
		put("/a/_hd/x", "x"),   // @4 (creates /a/_hd)
		put("/a/sub/_y", "y"),  // @5 (creates /a/sub)
		put("/a/b_/c", "c"),    // @6: '_' not first is visible
		put("/_hdir/vis", "z"), // @7
	)
	tests := []struct {
		name      string
		path      string
		recursive bool
		want      string
	}{
		{"root listing", "/", false,
			`{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"modifiedIndex":2,"createdIndex":2}]}}`},
		{"root recursive", "/", true,
			`{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"nodes":[` +
				`{"key":"/a/b_","dir":true,"nodes":[{"key":"/a/b_/c","value":"c","modifiedIndex":6,"createdIndex":6}],"modifiedIndex":6,"createdIndex":6},` +
				`{"key":"/a/sub","dir":true,"modifiedIndex":5,"createdIndex":5},` +
				`{"key":"/a/v","value":"v","modifiedIndex":3,"createdIndex":3}],"modifiedIndex":2,"createdIndex":2}]}}`},
		{"dir listing", "/a", false,
			`{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"key":"/a/b_","dir":true,"modifiedIndex":6,"createdIndex":6},{"key":"/a/sub","dir":true,"modifiedIndex":5,"createdIndex":5},{"key":"/a/v","value":"v","modifiedIndex":3,"createdIndex":3}],"modifiedIndex":2,"createdIndex":2}}`},
		{"dir with only hidden children has no nodes", "/a/sub", true,
			`{"action":"get","node":{"key":"/a/sub","dir":true,"modifiedIndex":5,"createdIndex":5}}`},
		{"hidden file read directly", "/a/_h", false,
			`{"action":"get","node":{"key":"/a/_h","value":"h","modifiedIndex":2,"createdIndex":2}}`},
		{"hidden top-level file read directly", "/_top", false,
			`{"action":"get","node":{"key":"/_top","value":"t","modifiedIndex":1,"createdIndex":1}}`},
		{"hidden dir read directly lists its visible children", "/_hdir", true,
			`{"action":"get","node":{"key":"/_hdir","dir":true,"nodes":[{"key":"/_hdir/vis","value":"z","modifiedIndex":7,"createdIndex":7}],"modifiedIndex":7,"createdIndex":7}}`},
		{"child of a hidden dir read directly", "/a/_hd/x", false,
			`{"action":"get","node":{"key":"/a/_hd/x","value":"x","modifiedIndex":4,"createdIndex":4}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := getJSON(t, s, tt.path, tt.recursive, true, t0); got != tt.want {
				t.Errorf("Get(%q):\n got %s\nwant %s", tt.path, got, tt.want)
			}
		})
	}
	t.Run("hidden nodes are writable", func(t *testing.T) {
		e := mustApply(t, s, t0, Request{Method: MethodPut, Path: "/a/_h", Value: "h2", PrevValue: "h"})
		if e.Action != ActionCompareAndSwap || *e.Node.Value != "h2" {
			t.Fatalf("cas on hidden key: %s", marshal(t, e))
		}
		mustApply(t, s, t0, del("/a/_h"))
	})
}

// TestEmptyDirHasNoNodes: the nodes field is absent, not [] (§3.8).
func TestEmptyDirHasNoNodes(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, putDir("/e"), put("/f", ""))
	for _, recursive := range []bool{false, true} {
		want := `{"action":"get","node":{"key":"/e","dir":true,"modifiedIndex":1,"createdIndex":1}}`
		if got := getJSON(t, s, "/e", recursive, false, t0); got != want {
			t.Errorf("recursive=%v:\n got %s\nwant %s", recursive, got, want)
		}
	}
	// An empty file's value is present.
	want := `{"action":"get","node":{"key":"/f","value":"","modifiedIndex":2,"createdIndex":2}}`
	if got := getJSON(t, s, "/f", false, false, t0); got != want {
		t.Errorf("empty file:\n got %s\nwant %s", got, want)
	}
}

// TestSorted: sorted orders nodes by full key in byte order at every level
// (§3.6); without sorted the same set is returned.
func TestSorted(t *testing.T) {
	s := New(Config{})
	keys := []string{"/d/z", "/d/B", "/d/a", "/d/a0/x", "/d/a0/b", "/d/_h", "/d/A", "/d/10", "/d/9"}
	for _, k := range keys {
		mustApply(t, s, t0, put(k, "v"))
	}
	e, err := s.Get("/d", true, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(ns NodeExterns)
	walk = func(ns NodeExterns) {
		for _, n := range ns {
			got = append(got, n.Key)
			walk(n.Nodes)
		}
	}
	walk(e.Node.Nodes)
	want := []string{"/d/10", "/d/9", "/d/A", "/d/B", "/d/a", "/d/a0", "/d/a0/b", "/d/a0/x", "/d/z"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted walk = %v, want %v", got, want)
	}

	unsorted, err := s.Get("/d", true, false, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(unsorted.Node.Nodes); n != len(e.Node.Nodes) {
		t.Errorf("unsorted has %d children, sorted %d", n, len(e.Node.Nodes))
	}
}

// TestRootGet: the root has no key and no indexes (§1.2.1).
func TestRootGet(t *testing.T) {
	s := New(Config{})
	for _, p := range []string{"/", "", "//", "/."} {
		if got, want := getJSON(t, s, p, true, true, t0), `{"action":"get","node":{"dir":true}}`; got != want {
			t.Errorf("empty root via %q:\n got %s\nwant %s", p, got, want)
		}
	}
	mustApply(t, s, t0, put("/a/b", "1"), put("/c", "2"))
	tests := []struct {
		recursive bool
		want      string
	}{
		{false, `{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"modifiedIndex":1,"createdIndex":1},{"key":"/c","value":"2","modifiedIndex":2,"createdIndex":2}]}}`},
		{true, `{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"nodes":[{"key":"/a/b","value":"1","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1},{"key":"/c","value":"2","modifiedIndex":2,"createdIndex":2}]}}`},
	}
	for _, tt := range tests {
		if got := getJSON(t, s, "/", tt.recursive, true, t0); got != tt.want {
			t.Errorf("recursive=%v:\n got %s\nwant %s", tt.recursive, got, tt.want)
		}
	}
	if e, _ := s.Get("/", false, false, t0); e.EtcdIndex != 2 {
		t.Errorf("root get EtcdIndex = %d, want the store index 2", e.EtcdIndex)
	}
}

// TestResponseTTL: ttl = ceil((expiration-now)/1s), may be 0 (omitted) or
// negative for an overdue node; expiration is UTC and independent of now
// (§1.2.5).
func TestResponseTTL(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, withTTL(put("/k", "v"), 10))
	const exp = "2024-05-06T05:08:19Z" // t0+10s in UTC
	tests := []struct {
		elapsed time.Duration
		ttl     string // the ttl member, "" when omitted
	}{
		{0, `"ttl":10,`},
		{time.Nanosecond, `"ttl":10,`},
		{999 * time.Millisecond, `"ttl":10,`},
		{sec, `"ttl":9,`},
		{sec + time.Nanosecond, `"ttl":9,`},
		{9500 * time.Millisecond, `"ttl":1,`},
		{10*sec - time.Nanosecond, `"ttl":1,`},
		{10 * sec, ``},
		{10*sec + 500*time.Millisecond, ``},
		{11 * sec, `"ttl":-1,`},
		{12500 * time.Millisecond, `"ttl":-2,`},
	}
	for _, tt := range tests {
		want := `{"action":"get","node":{"key":"/k","value":"v","expiration":"` + exp + `",` + tt.ttl + `"modifiedIndex":1,"createdIndex":1}}`
		if got := getJSON(t, s, "/k", false, false, at(tt.elapsed)); got != want {
			t.Errorf("at t0+%v:\n got %s\nwant %s", tt.elapsed, got, want)
		}
	}
	// Expirations keep sub-second precision and are UTC whatever now's zone.
	s2 := New(Config{})
	now := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("UTC-7", -7*3600))
	e := mustApply(t, s2, now, withTTL(put("/k", "v"), 5))
	want := `{"action":"set","node":{"key":"/k","value":"v","expiration":"2024-01-02T10:04:10.123456789Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`
	if got := marshal(t, e); got != want {
		t.Errorf("sub-second:\n got %s\nwant %s", got, want)
	}
}

// TestKeyNormalisation: keys go through path.Clean(path.Join("/", key)) (§3.17).
func TestKeyNormalisation(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, put("a//b/./c/../d/", "v"))
	want := `{"action":"get","node":{"key":"/a/b/d","value":"v","modifiedIndex":1,"createdIndex":1}}`
	for _, p := range []string{"/a/b/d", "a/b/d", "/a/b/d/", "//a/b/d", "/x/../a/b/d"} {
		if got := getJSON(t, s, p, false, false, t0); got != want {
			t.Errorf("Get(%q):\n got %s\nwant %s", p, got, want)
		}
	}
}

// TestExpireTimeEdges: absurd TTLs are clamped (100 years) rather than
// overflowing into the past, and ttl=0 at the Unix epoch is still a TTL.
func TestExpireTimeEdges(t *testing.T) {
	s := New(Config{})
	e := mustApply(t, s, t0, withTTL(put("/huge", "v"), ^uint64(0)))
	if want := t0.Add(100 * 365 * 24 * time.Hour); e.Node.Expiration == nil || !e.Node.Expiration.Equal(want) {
		t.Fatalf("huge ttl expiration %v, want %v", e.Node.Expiration, want)
	}
	if evs := s.DeleteExpiredKeys(at(50 * 365 * 24 * time.Hour)); len(evs) != 0 {
		t.Fatalf("huge ttl expired early: %v", keysAndIndexes(evs))
	}

	epoch := time.Unix(0, 0)
	e = mustApply(t, s, epoch, withTTL(put("/epoch", "v"), 0))
	// The epoch is nudged by 1ns because expireTime 0 means permanent.
	if e.Node.Expiration == nil || !e.Node.Expiration.Equal(epoch.Add(time.Nanosecond)) {
		t.Fatalf("ttl=0 at the epoch: %s", marshal(t, e))
	}
	if got := keysAndIndexes(s.DeleteExpiredKeys(epoch.Add(time.Nanosecond))); !slices.Equal(got, []string{"expire /epoch@3"}) {
		t.Fatalf("sweep after the epoch = %v", got)
	}
}
