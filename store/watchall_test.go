package store

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// refreshPut is a PUT refresh=true&prevExist=true&ttl=ttl (a heartbeat).
func refreshPut(p string, ttl uint64) Request {
	return Request{Method: MethodPut, Path: p, PrevExist: PrevExistTrue, Refresh: true, HasTTL: true, TTL: ttl}
}

// summary is keysAndIndexes with refreshes marked.
func summary(evs []*Event) []string {
	out := keysAndIndexes(evs)
	for i, e := range evs {
		if e.Refresh {
			out[i] += " refresh"
		}
	}
	return out
}

// TestWatchAllMatching: a WatchAll receives every event at or below its
// prefix, refreshes and hidden keys included, and the removal of ancestor
// directories; never a sibling that only shares a string prefix.
func TestWatchAllMatching(t *testing.T) {
	// Fixture: /sk/a/x @1 (ttl 10), /sk/_h/y @2, /top/sk/b @3.
	fixture := []Request{withTTL(put("/sk/a/x", "v"), 10), put("/sk/_h/y", "v"), put("/top/sk/b", "v")}
	tests := []struct {
		name   string
		prefix string
		writes []Request
		want   []string
	}{
		{name: "writes, hidden keys and refreshes below the prefix",
			prefix: "/sk",
			writes: []Request{put("/sk/a/z", "w"), put("/sk/_h/y", "w"), put("/sk/a/_i", "w"), refreshPut("/sk/a/x", 20),
				{Method: MethodPut, Path: "/sk/a/x", Refresh: true, HasTTL: true, TTL: 30}, put("/skx", "w"), put("/s", "w")},
			want: []string{"set /sk/a/z@4", "set /sk/_h/y@5", "set /sk/a/_i@6", "update /sk/a/x@7 refresh", "set /sk/a/x@8 refresh"}},
		{name: "the prefix itself and in-order keys",
			prefix: "/sk/a",
			writes: []Request{post("/sk/a", "q"), {Method: MethodDelete, Path: "/sk/a", Recursive: true}},
			want:   []string{"create /sk/a/00000000000000000004@4", "delete /sk/a@5"}},
		{name: "delete of an ancestor directory",
			prefix: "/top/sk",
			writes: []Request{put("/top/sk/c", "w"), {Method: MethodDelete, Path: "/top", Recursive: true}},
			want:   []string{"set /top/sk/c@4", "delete /top@5"}},
		{name: "hidden prefix",
			prefix: "/sk/_h",
			writes: []Request{put("/sk/_h/z", "w"), put("/sk/a/z", "w"), del("/sk/_h/y")},
			want:   []string{"set /sk/_h/z@4", "delete /sk/_h/y@6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			mustApply(t, s, t0, fixture...)
			w, err := s.WatchAll(tt.prefix, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Remove()
			mustApply(t, s, t0, tt.writes...)
			evs, closed := received(w)
			if got := summary(evs); !slices.Equal(got, tt.want) || closed {
				t.Fatalf("got %v closed %v\nwant %v", got, closed, tt.want)
			}
		})
	}
}

// TestWatchAllExpire: expiries of keys and of ancestor directories arrive,
// and a refresh carries the new expiration.
func TestWatchAllExpire(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, withTTL(put("/sk/a/x", "v"), 5), withTTL(putDir("/sk/d"), 8), put("/sk/d/y", "v")) // @1-@3
	w, err := s.WatchAll("/sk", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Remove()
	mustApply(t, s, at(4*sec), refreshPut("/sk/a/x", 5)) // @4: x now expires at 9 s
	s.DeleteExpiredKeys(at(8 * sec))                     // @5: /sk/d
	s.DeleteExpiredKeys(at(9 * sec))                     // @6: /sk/a/x
	evs, _ := received(w)
	want := []string{"update /sk/a/x@4 refresh", "expire /sk/d@5", "expire /sk/a/x@6"}
	if got := summary(evs); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if exp := evs[0].Node.Expiration; exp == nil || !exp.Equal(at(9*sec)) {
		t.Fatalf("refresh expiration %v, want %v", exp, at(9*sec))
	}
}

// TestWatchAllLeavesWatchAlone: a recursive Watch next to a WatchAll still
// sees neither refreshes nor hidden keys.
func TestWatchAllLeavesWatchAlone(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, withTTL(put("/sk/x", "v"), 5)) // @1
	all, err := s.WatchAll("/sk", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Remove()
	rec := mustWatch(t, s, "/sk", true, true, 0)
	defer rec.Remove()
	mustApply(t, s, t0, refreshPut("/sk/x", 5), put("/sk/_h", "v"), put("/sk/y", "v")) // @2-@4
	if got, _ := received(rec); !slices.Equal(keysAndIndexes(got), []string{"set /sk/y@4"}) {
		t.Fatalf("Watch got %v, want [set /sk/y@4]", keysAndIndexes(got))
	}
	if got, _ := received(all); len(got) != 3 {
		t.Fatalf("WatchAll got %v, want 3 events", summary(got))
	}
	// From history, too.
	w := mustWatch(t, s, "/sk", true, true, 2)
	defer w.Remove()
	if got, _ := received(w); !slices.Equal(keysAndIndexes(got), []string{"set /sk/y@4"}) {
		t.Fatalf("Watch from history got %v, want [set /sk/y@4]", keysAndIndexes(got))
	}
}

// TestWatchAllHistory: a WatchAll from a past index replays what it would
// have received, refreshes and hidden keys included; older than the window
// is 401.
func TestWatchAllHistory(t *testing.T) {
	s := New(Config{HistorySize: 4})
	mustApply(t, s, t0, withTTL(put("/sk/x", "v"), 5), put("/other", "v"), refreshPut("/sk/x", 5), put("/sk/_h", "v"), put("/sk/y", "v")) // @1-@5
	w, err := s.WatchAll("/sk", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Remove()
	evs, closed := received(w)
	want := []string{"update /sk/x@3 refresh", "set /sk/_h@4", "set /sk/y@5"}
	if got := summary(evs); !slices.Equal(got, want) || closed {
		t.Fatalf("got %v closed %v, want %v open", got, closed, want)
	}
	_, err = s.WatchAll("/sk", 1)
	wantErr(t, err, EcodeEventIndexCleared, "the requested history has been cleared [2/1]", 5)
}

// TestWatchAllEnds: overflow and restore end a WatchAll with the sentinel
// errors, and it resumes from NextIndex without a gap.
func TestWatchAllEnds(t *testing.T) {
	s := New(Config{WatchBuffer: 2})
	w, err := s.WatchAll("/sk", 0)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, t0, put("/sk/a", "1"), put("/sk/b", "2"), put("/sk/c", "3")) // @1-@3
	evs, closed := received(w)
	if !closed || !errors.Is(w.Err(), ErrWatcherOverflow) || len(evs) != 2 || w.NextIndex() != 3 {
		t.Fatalf("got %v closed %v err %v next %d; want 2 events, overflow, next 3", summary(evs), closed, w.Err(), w.NextIndex())
	}
	w, err = s.WatchAll("/sk", w.NextIndex())
	if err != nil {
		t.Fatal(err)
	}
	if evs, _ := received(w); !slices.Equal(summary(evs), []string{"set /sk/c@3"}) {
		t.Fatalf("resumed: %v", summary(evs))
	}
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if _, closed := received(w); !closed || !errors.Is(w.Err(), ErrWatcherRestored) || s.WatcherCount() != 0 {
		t.Fatalf("after restore: closed %v err %v count %d", closed, w.Err(), s.WatcherCount())
	}
}

// TestGetAll: every node at or below the path, hidden ones and directories
// included, parents first, with expirations; the index it was read at.
func TestGetAll(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, put("/sk/a/x", "1"), put("/sk/_h/y", "2"), withTTL(putDir("/sk/d"), 5), withTTL(put("/sk/d/z", "3"), 9), put("/skx", "4")) // @1-@5
	tests := []struct {
		path string
		want []string // key[=value][@ttl]
	}{
		{"/sk", []string{"/sk", "/sk/_h", "/sk/_h/y=2", "/sk/a", "/sk/a/x=1", "/sk/d/z=3@9", "/sk/d@5"}},
		{"/sk/d/z", []string{"/sk/d/z=3@9"}},
		{"/", []string{"/sk", "/sk/_h", "/sk/_h/y=2", "/sk/a", "/sk/a/x=1", "/sk/d/z=3@9", "/sk/d@5", "/skx=4"}},
		{"/missing", nil},
		{"/sk/a/x/below", nil},
	}
	for _, tt := range tests {
		nodes, index := s.GetAll(tt.path, t0)
		if index != 5 {
			t.Errorf("GetAll(%q) index %d, want 5", tt.path, index)
		}
		var got []string
		listed, seen := map[string]bool{}, map[string]bool{}
		for _, n := range nodes {
			listed[n.Key] = true
		}
		for _, n := range nodes {
			d := n.Key
			if n.Value != nil {
				d += "=" + *n.Value
			}
			if n.Expiration != nil {
				d += "@" + utoa(uint64(n.TTL))
			}
			if n.Nodes != nil {
				t.Errorf("%s: Nodes listed", n.Key)
			}
			if p := parentPath(n.Key); listed[p] && !seen[p] {
				t.Errorf("%s listed before its parent", n.Key)
			}
			seen[n.Key] = true
			got = append(got, d)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("GetAll(%q) = %v\nwant %v", tt.path, got, tt.want)
		}
	}
	if st := statsMap(t, s); st["getsSuccess"]+st["getsFail"] != 0 {
		t.Errorf("GetAll counted as gets: %v", st)
	}
}
