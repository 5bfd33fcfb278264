package store

import (
	"slices"
	"testing"
	"time"
)

// TestDeleteExpiredKeysOrder: one expire event and one index per expired
// node, soonest first; the cutoff is inclusive; a sweep that expires nothing
// consumes no index (reference §1.2.3 SYNC row, §1.2.4 Expire).
func TestDeleteExpiredKeysOrder(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0,
		withTTL(put("/five", "5"), 5),   // @1
		withTTL(put("/three", "3"), 3),  // @2
		withTTL(put("/seven", "7"), 7),  // @3
		put("/perm", "p"),               // @4
		withTTL(put("/four", "4"), 4),   // @5
		withTTL(put("/ten", "10"), 10),  // @6
		withTTL(putDir("/dir"), 6),      // @7
		put("/dir/in", "x"),             // @8
		withTTL(post("/dir", "q"), 100), // @9: in-order child, gone with /dir
	)
	if next, ok := s.NextExpiration(); !ok || !next.Equal(at(3*sec)) {
		t.Fatalf("NextExpiration = %v %v, want t0+3s", next, ok)
	}

	steps := []struct {
		now  time.Duration
		want []string
		next time.Duration // 0: no expiration left
	}{
		{2 * sec, nil, 3 * sec},
		{3*sec - time.Nanosecond, nil, 3 * sec},
		{6 * sec, []string{"expire /three@10", "expire /four@11", "expire /five@12", "expire /dir@13"}, 7 * sec},
		{6 * sec, nil, 7 * sec},
		{7 * sec, []string{"expire /seven@14"}, 10 * sec},
		{time.Hour, []string{"expire /ten@15"}, 0},
		{2 * time.Hour, nil, 0},
	}
	for _, st := range steps {
		before := s.Index()
		evs := s.DeleteExpiredKeys(at(st.now))
		if got := keysAndIndexes(evs); !slices.Equal(got, st.want) {
			t.Fatalf("sweep at t0+%v = %v, want %v", st.now, got, st.want)
		}
		if s.Index() != before+uint64(len(evs)) {
			t.Fatalf("index %d after %d expiries from %d", s.Index(), len(evs), before)
		}
		for _, e := range evs {
			if e.EtcdIndex != e.Index() {
				t.Errorf("event %s EtcdIndex %d", e.Node.Key, e.EtcdIndex)
			}
		}
		next, ok := s.NextExpiration()
		if ok != (st.next != 0) || (ok && !next.Equal(at(st.next))) {
			t.Fatalf("after sweep at t0+%v NextExpiration = %v %v, want t0+%v", st.now, next, ok, st.next)
		}
	}
	if got := statsMap(t, s)["expireCount"]; got != 6 {
		t.Errorf("expireCount = %d, want 6", got)
	}
	want := `{"action":"get","node":{"dir":true,"nodes":[{"key":"/perm","value":"p","modifiedIndex":4,"createdIndex":4}]}}`
	if got := getJSON(t, s, "/", true, true, at(2*time.Hour)); got != want {
		t.Errorf("tree after expiry:\n got %s\nwant %s", got, want)
	}
}

// TestExpireEventJSON: expire events carry the new modifiedIndex, the old
// createdIndex, dir:true for directories (3.4+) and the old node with its
// expiration as prevNode; no value in node.
func TestExpireEventJSON(t *testing.T) {
	tests := []struct {
		name  string
		req   Request
		sweep time.Duration
		want  string
	}{
		{name: "file swept on time",
			req: withTTL(put("/k", "v"), 5), sweep: 5 * sec,
			want: `{"action":"expire","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},` +
				`"prevNode":{"key":"/k","value":"v","expiration":"2024-05-06T05:08:14Z","modifiedIndex":1,"createdIndex":1}}`},
		{name: "file swept late has a negative prevNode ttl",
			req: withTTL(put("/k", "v"), 5), sweep: 6500 * time.Millisecond,
			want: `{"action":"expire","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},` +
				`"prevNode":{"key":"/k","value":"v","expiration":"2024-05-06T05:08:14Z","ttl":-1,"modifiedIndex":1,"createdIndex":1}}`},
		{name: "directory",
			req: withTTL(putDir("/d"), 5), sweep: 5 * sec,
			want: `{"action":"expire","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":1},` +
				`"prevNode":{"key":"/d","dir":true,"expiration":"2024-05-06T05:08:14Z","modifiedIndex":1,"createdIndex":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			mustApply(t, s, t0, tt.req)
			evs := s.DeleteExpiredKeys(at(tt.sweep))
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			if got := marshal(t, evs[0]); got != tt.want {
				t.Errorf("expire event:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestExpireDirectory: an expired directory takes its subtree with it in one
// event that reaches the watchers of the directory, of its ancestors
// (recursive) and of any path below it, recursive or not, hidden or not, and
// existing or not (the last is a deliberate Cairn difference). TTLs inside
// the subtree leave the heap: no ghost expiry follows.
func TestExpireDirectory(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0,
		withTTL(putDir("/d"), 5),          // @1
		put("/d/a", "a"),                  // @2
		put("/d/sub/b", "b"),              // @3
		put("/d/_h", "h"),                 // @4
		withTTL(put("/d/t", "t"), 100),    // @5
		withTTL(put("/d/sub/u", "u"), 50), // @6
		put("/dx", "sibling"),             // @7
	)
	type watch struct {
		key               string
		recursive, stream bool
		fires             bool
	}
	watches := []watch{
		{"/d", false, false, true},
		{"/d", true, true, true},
		{"/d/a", false, false, true},
		{"/d/a", false, true, true},
		{"/d/sub", true, true, true},
		{"/d/sub/b", false, false, true},
		{"/d/_h", false, false, true},
		{"/d/t", false, true, true},
		{"/d/not/there", false, false, true},
		{"/", true, true, true},
		{"/", false, false, false},
		{"/dx", false, false, false},
		{"/dx", true, true, false},
	}
	ws := make([]*Watcher, len(watches))
	for i, w := range watches {
		ws[i] = mustWatch(t, s, w.key, w.recursive, w.stream, 0)
	}

	evs := s.DeleteExpiredKeys(at(5 * sec))
	if got := keysAndIndexes(evs); !slices.Equal(got, []string{"expire /d@8"}) {
		t.Fatalf("sweep = %v, want [expire /d@8]", got)
	}
	for i, w := range watches {
		got, closed := received(ws[i])
		switch {
		case w.fires && (len(got) != 1 || got[0] != evs[0]):
			t.Errorf("watch %+v got %v, want the /d expire event once", w, keysAndIndexes(got))
		case !w.fires && len(got) != 0:
			t.Errorf("watch %+v got %v, want nothing", w, keysAndIndexes(got))
		case closed != (w.fires && !w.stream):
			t.Errorf("watch %+v closed=%v", w, closed)
		}
	}
	for _, p := range []string{"/d", "/d/a", "/d/sub/b", "/d/_h", "/d/t"} {
		_, err := s.Get(p, false, false, at(5*sec))
		wantErr(t, err, EcodeKeyNotFound, "/d", 8)
	}
	if next, ok := s.NextExpiration(); ok {
		t.Fatalf("NextExpiration = %v after the subtree expired: a ghost TTL entry", next)
	}
	if evs := s.DeleteExpiredKeys(at(time.Hour)); len(evs) != 0 {
		t.Fatalf("ghost expiries %v", keysAndIndexes(evs))
	}
	if s.Index() != 8 {
		t.Fatalf("index %d, want 8", s.Index())
	}
}

// TestExpireChildThenDir: a child that expires before its directory gets its
// own event; the directory's comes later.
func TestExpireChildThenDir(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, withTTL(putDir("/d"), 10), withTTL(put("/d/c", "c"), 5), put("/d/p", "p"))
	w := mustWatch(t, s, "/d/p", false, true, 0)
	got := keysAndIndexes(s.DeleteExpiredKeys(at(20 * sec)))
	if want := []string{"expire /d/c@4", "expire /d@5"}; !slices.Equal(got, want) {
		t.Fatalf("sweep = %v, want %v", got, want)
	}
	evs, _ := received(w)
	if got := keysAndIndexes(evs); !slices.Equal(got, []string{"expire /d@5"}) {
		t.Fatalf("watcher on /d/p got %v", got)
	}
}

// TestHiddenDirExpiry: a recursive watch on an ancestor does not see a hidden
// directory expire; a watch on the hidden directory itself does.
func TestHiddenDirExpiry(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, withTTL(putDir("/a/_h"), 1), put("/a/_h/x", "x"))
	root := mustWatch(t, s, "/", true, true, 0)
	a := mustWatch(t, s, "/a", true, true, 0)
	self := mustWatch(t, s, "/a/_h", false, false, 0)
	below := mustWatch(t, s, "/a/_h/x", false, false, 0)
	s.DeleteExpiredKeys(at(sec))
	for _, w := range []*Watcher{root, a} {
		if evs, _ := received(w); len(evs) != 0 {
			t.Errorf("recursive watch on %s saw hidden %v", w.key, keysAndIndexes(evs))
		}
	}
	for _, w := range []*Watcher{self, below} {
		if evs, _ := received(w); len(evs) != 1 || evs[0].Node.Key != "/a/_h" {
			t.Errorf("watch on %s got %v, want expire /a/_h", w.key, keysAndIndexes(evs))
		}
	}
}

// TestTTLHeapFollowsWrites: every write that removes, replaces or changes a
// node with a TTL updates the TTL heap, so expiry happens exactly when the
// current TTL says and never for a node that is gone (no ghost expiries).
// Each row sets up at t0, applies op at t0+1s, then sweeps at the listed
// times.
func TestTTLHeapFollowsWrites(t *testing.T) {
	type sweep struct {
		at   time.Duration
		want []string
	}
	tests := []struct {
		name   string
		setup  []Request
		op     Request
		sweeps []sweep
	}{
		{name: "set without ttl",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: put("/k", "w"),
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "set with a longer ttl",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: withTTL(put("/k", "w"), 50),
			sweeps: []sweep{{10 * sec, nil}, {51 * sec, []string{"expire /k@3"}}}},
		{name: "set with a shorter ttl",
			setup: []Request{withTTL(put("/k", "v"), 50)}, op: withTTL(put("/k", "w"), 2),
			sweeps: []sweep{{3 * sec, []string{"expire /k@3"}}, {time.Hour, nil}}},
		{name: "set dir=true over a file with ttl",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: putDir("/k"),
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "update without ttl",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: Request{Method: MethodPut, Path: "/k", Value: "w", PrevExist: PrevExistTrue},
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "update dir without ttl",
			setup: []Request{withTTL(putDir("/k"), 5)}, op: Request{Method: MethodPut, Path: "/k", Dir: true, PrevExist: PrevExistTrue},
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "update adds a ttl to a permanent node",
			setup: []Request{put("/k", "v")}, op: withTTL(Request{Method: MethodPut, Path: "/k", Value: "w", PrevExist: PrevExistTrue}, 5),
			sweeps: []sweep{{5 * sec, nil}, {6 * sec, []string{"expire /k@3"}}}},
		{name: "cas without ttl",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: Request{Method: MethodPut, Path: "/k", Value: "w", PrevIndex: 1},
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "refresh via set",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: withTTL(Request{Method: MethodPut, Path: "/k", Refresh: true}, 20),
			sweeps: []sweep{{20 * sec, nil}, {21 * sec, []string{"expire /k@3"}}}},
		{name: "refresh via update",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: withTTL(Request{Method: MethodPut, Path: "/k", PrevExist: PrevExistTrue, Refresh: true}, 20),
			sweeps: []sweep{{20 * sec, nil}, {21 * sec, []string{"expire /k@3"}}}},
		{name: "delete",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: del("/k"),
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "compare and delete",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: Request{Method: MethodDelete, Path: "/k", PrevValue: "v"},
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "recursive delete of the parent",
			setup:  []Request{withTTL(put("/d/k", "v"), 5), withTTL(putDir("/d/e"), 6), withTTL(put("/d/e/f", "v"), 7)},
			op:     Request{Method: MethodDelete, Path: "/d", Recursive: true},
			sweeps: []sweep{{time.Hour, nil}}},
		{name: "failed write leaves the ttl alone",
			setup: []Request{withTTL(put("/k", "v"), 5)}, op: Request{Method: MethodPut, Path: "/k", Value: "w", PrevValue: "nope"},
			sweeps: []sweep{{4 * sec, nil}, {5 * sec, []string{"expire /k@2"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			mustApply(t, s, t0, tt.setup...)
			s.Apply(&tt.op, at(sec)) // the failed-write row fails on purpose
			for _, sw := range tt.sweeps {
				if got := keysAndIndexes(s.DeleteExpiredKeys(at(sw.at))); !slices.Equal(got, sw.want) {
					t.Fatalf("sweep at t0+%v = %v, want %v", sw.at, got, sw.want)
				}
			}
			if next, ok := s.NextExpiration(); ok {
				t.Fatalf("NextExpiration = %v at the end: a ghost TTL entry", next)
			}
		})
	}
}
