package store

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestWatchOneShot: a one-shot watch delivers exactly one event, closes, and
// unregisters; the watched key need not exist (reference §1.3.3–§1.3.4).
func TestWatchOneShot(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, put("/other", "x")) // @1
	w := mustWatch(t, s, "/k", false, false, 0)
	if w.StartIndex() != 1 || s.WatcherCount() != 1 {
		t.Fatalf("StartIndex %d, count %d; want 1, 1", w.StartIndex(), s.WatcherCount())
	}
	mustApply(t, s, t0, put("/k", "a"), put("/k", "b")) // @2, @3
	evs, closed := received(w)
	if got := keysAndIndexes(evs); !slices.Equal(got, []string{"set /k@2"}) || !closed {
		t.Fatalf("got %v closed %v, want [set /k@2] and closed", got, closed)
	}
	if w.Err() != nil || w.NextIndex() != 3 || s.WatcherCount() != 0 {
		t.Fatalf("Err %v, NextIndex %d, count %d; want nil, 3, 0", w.Err(), w.NextIndex(), s.WatcherCount())
	}
	w.Remove() // harmless after delivery
	if s.WatcherCount() != 0 {
		t.Fatalf("count %d after Remove of a finished watcher", s.WatcherCount())
	}
}

// TestWatchMatching: which live events a watch receives (§1.3.3). Each row
// registers a stream watch, applies the writes and lists what it received.
func TestWatchMatching(t *testing.T) {
	// Fixture: /dir/key @1, /dirx @2, /_foo/bar @3, /a/_b/c @4.
	fixture := []Request{put("/dir/key", "v"), put("/dirx", "v"), put("/_foo/bar", "v"), put("/a/_b/c", "v")}
	tests := []struct {
		name      string
		key       string
		recursive bool
		writes    []Request
		want      []string
	}{
		{name: "key: its own writes only",
			key:    "/dir/key",
			writes: []Request{put("/dir/key", "w"), put("/dir/keyx", "w"), put("/dir/other", "w"), put("/dir/key", "z")},
			want:   []string{"set /dir/key@5", "set /dir/key@8"}},
		{name: "key: every action",
			key: "/dir/key",
			writes: []Request{
				Request{Method: MethodPut, Path: "/dir/key", Value: "u", PrevExist: PrevExistTrue},
				Request{Method: MethodPut, Path: "/dir/key", Value: "c", PrevValue: "u"},
				Request{Method: MethodDelete, Path: "/dir/key", PrevValue: "c"},
				Request{Method: MethodPut, Path: "/dir/key", Value: "n", PrevExist: PrevExistFalse},
				del("/dir/key")},
			want: []string{"update /dir/key@5", "compareAndSwap /dir/key@6", "compareAndDelete /dir/key@7", "create /dir/key@8", "delete /dir/key@9"}},
		{name: "key that does not exist yet",
			key:    "/later/x",
			writes: []Request{put("/later/x", "w")},
			want:   []string{"set /later/x@5"}},
		{name: "dir non-recursive: not its children",
			key:    "/dir",
			writes: []Request{put("/dir/key", "w"), put("/dir/new", "w"), Request{Method: MethodDelete, Path: "/dir", Recursive: true}},
			want:   []string{"delete /dir@7"}},
		{name: "dir recursive: descendants, not prefix siblings",
			key:       "/dir",
			recursive: true,
			writes:    []Request{put("/dir/key", "w"), put("/dir/a/b/c", "w"), put("/dirx", "w"), put("/di", "w"), post("/dir", "q")},
			want:      []string{"set /dir/key@5", "set /dir/a/b/c@6", "create /dir/00000000000000000009@9"}},
		{name: "root recursive: hidden segments below the watch are skipped",
			key:       "/",
			recursive: true,
			writes:    []Request{put("/_top", "w"), put("/_foo/bar", "w"), put("/a/_b/c", "w"), put("/a/b", "w"), put("/a/b_/c", "w")},
			want:      []string{"set /a/b@8", "set /a/b_/c@9"}},
		{name: "recursive on a dir: hidden below skipped",
			key:       "/a",
			recursive: true,
			writes:    []Request{put("/a/_b/c", "w"), put("/a/_x", "w"), put("/a/y", "w")},
			want:      []string{"set /a/y@7"}},
		{name: "a watch on a hidden key sees it",
			key:    "/_foo",
			writes: []Request{putDir("/_foo/sub"), Request{Method: MethodDelete, Path: "/_foo", Recursive: true}},
			want:   []string{"delete /_foo@6"}},
		{name: "a recursive watch on a hidden dir sees its visible children",
			key:       "/_foo",
			recursive: true,
			writes:    []Request{put("/_foo/bar", "w"), put("/_foo/_x", "w"), put("/_foo/a/_y", "w"), put("/_foo/a/z", "w")},
			want:      []string{"set /_foo/bar@5", "set /_foo/a/z@8"}},
		{name: "ancestor dir delete reaches a key watcher",
			key:    "/dir/key",
			writes: []Request{Request{Method: MethodDelete, Path: "/dir", Recursive: true}},
			want:   []string{"delete /dir@5"}},
		{name: "ancestor delete reaches a watch on a missing path below (Cairn)",
			key:    "/dir/none/deeper",
			writes: []Request{Request{Method: MethodDelete, Path: "/dir", Recursive: true}},
			want:   []string{"delete /dir@5"}},
		{name: "ancestor delete reaches a hidden path below",
			key:    "/a/_b/c",
			writes: []Request{Request{Method: MethodDelete, Path: "/a", Recursive: true}},
			want:   []string{"delete /a@5"}},
		{name: "a prefix sibling's delete does not reach",
			key:    "/dirx/y",
			writes: []Request{Request{Method: MethodDelete, Path: "/dir", Recursive: true}},
			want:   nil},
		{name: "file delete does not reach a path below it",
			key:    "/dirx/y",
			writes: []Request{del("/dirx")},
			want:   nil},
		{name: "set dir=true over a file is a set of the key",
			key:    "/dirx",
			writes: []Request{putDir("/dirx")},
			want:   []string{"set /dirx@5"}},
		{name: "failed writes do not notify",
			key:       "/",
			recursive: true,
			writes:    []Request{put("/dir", "w"), Request{Method: MethodPut, Path: "/dir/key", Value: "w", PrevValue: "no"}},
			want:      nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			mustApply(t, s, t0, fixture...)
			w := mustWatch(t, s, tt.key, tt.recursive, true, 0)
			for i := range tt.writes {
				s.Apply(&tt.writes[i], t0) // some rows fail on purpose
			}
			evs, closed := received(w)
			if got := keysAndIndexes(evs); !slices.Equal(got, tt.want) || closed {
				t.Errorf("got %v (closed %v), want %v", got, closed, tt.want)
			}
		})
	}
}

// TestWatchFromHistory: a waitIndex inside the history returns the first
// matching event at or after it (§1.3.2), with the same matching rules as
// live delivery (hidden filtering included, a deliberate Cairn choice);
// StartIndex is the store index when the watch began.
func TestWatchFromHistory(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0,
		put("/k", "1"),              // @1
		put("/d/a", "1"),            // @2
		put("/k", "2"),              // @3
		put("/d/_h", "1"),           // @4
		withTTL(put("/r", "1"), 10), // @5
		withTTL(Request{Method: MethodPut, Path: "/r", PrevExist: PrevExistTrue, Refresh: true}, 10), // @6
		put("/d/b", "1"), // @7
		Request{Method: MethodDelete, Path: "/d", Recursive: true}, // @8
		put("/r", "2"), // @9
	)
	tests := []struct {
		name      string
		key       string
		recursive bool
		since     uint64
		want      string // "" when the watch waits for a live event
	}{
		{"first match, not the latest", "/k", false, 1, "set /k@1"},
		{"from between matches", "/k", false, 2, "set /k@3"},
		{"past the last match waits", "/k", false, 4, ""},
		{"recursive", "/d", true, 3, "set /d/b@7"},
		{"recursive skips hidden in history", "/d", true, 4, "set /d/b@7"},
		{"hidden key itself from history", "/d/_h", false, 1, "set /d/_h@4"},
		{"non-recursive dir sees its own delete", "/d", false, 1, "delete /d@8"},
		{"ancestor delete in history", "/d/a", false, 3, "delete /d@8"},
		{"ancestor delete in history, missing path", "/d/zz/y", false, 1, "delete /d@8"},
		{"refresh skipped", "/r", false, 6, "set /r@9"},
		{"at the last index", "/r", false, 9, "set /r@9"},
		{"root recursive", "/", true, 8, "delete /d@8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWatch(t, s, tt.key, tt.recursive, false, tt.since)
			defer w.Remove()
			if w.StartIndex() != 9 {
				t.Errorf("StartIndex %d, want 9", w.StartIndex())
			}
			evs, closed := received(w)
			if tt.want == "" {
				if len(evs) != 0 || closed {
					t.Fatalf("got %v closed %v, want a pending watch", keysAndIndexes(evs), closed)
				}
				return
			}
			if got := keysAndIndexes(evs); len(got) != 1 || got[0] != tt.want || !closed {
				t.Fatalf("got %v closed %v, want [%s] and closed", got, closed, tt.want)
			}
		})
	}
	// A pending history watch fires on the next live match.
	w := mustWatch(t, s, "/k", false, false, 4)
	mustApply(t, s, t0, put("/k", "3")) // @10
	if evs, _ := received(w); len(evs) != 1 || evs[0].Index() != 10 {
		t.Fatalf("got %v, want set /k@10", keysAndIndexes(evs))
	}
}

// TestWatchHistoryCleared: a waitIndex older than the window is 401 with the
// window start in the cause and the store index (§1.3.2).
func TestWatchHistoryCleared(t *testing.T) {
	s := New(Config{HistorySize: 3})
	for range 6 {
		mustApply(t, s, t0, put("/k", "v")) // @1..@6; history keeps 4..6
	}
	if start, last := s.HistoryRange(); start != 4 || last != 6 {
		t.Fatalf("HistoryRange = [%d, %d], want [4, 6]", start, last)
	}
	for _, since := range []uint64{1, 3} {
		_, err := s.Watch("/k", false, false, since)
		wantErr(t, err, EcodeEventIndexCleared, "the requested history has been cleared [4/"+utoa(since)+"]", 6)
		if se := asStoreError(t, err); se.StatusCode() != 400 {
			t.Errorf("401 maps to HTTP %d, want 400", se.StatusCode())
		}
	}
	_, err := s.Watch("/", true, true, 2)
	wantErr(t, err, EcodeEventIndexCleared, "the requested history has been cleared [4/2]", 6)
	if s.WatcherCount() != 0 {
		t.Fatalf("a rejected watch is registered")
	}
	w := mustWatch(t, s, "/k", false, false, 4)
	if evs, _ := received(w); len(evs) != 1 || evs[0].Index() != 4 {
		t.Fatalf("waitIndex 4 got %v, want set /k@4", keysAndIndexes(evs))
	}
}

// TestWatchFutureIndex: a waitIndex beyond the last event waits for an event
// with at least that index.
func TestWatchFutureIndex(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, put("/k", "v")) // @1
	w := mustWatch(t, s, "/k", false, false, 4)
	mustApply(t, s, t0, put("/k", "a"), put("/k", "b")) // @2, @3
	if evs, closed := received(w); len(evs) != 0 || closed {
		t.Fatalf("got %v before index 4", keysAndIndexes(evs))
	}
	mustApply(t, s, t0, put("/k", "c")) // @4
	if evs, closed := received(w); len(evs) != 1 || evs[0].Index() != 4 || !closed {
		t.Fatalf("got %v closed %v, want set /k@4", keysAndIndexes(evs), closed)
	}
}

// TestStreamFromHistory: a stream started in the past delivers every matching
// historic event, stays registered and then delivers live events (a
// deliberate fix of etcd's one-event bug, §1.3.6).
func TestStreamFromHistory(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, put("/d/a", "1"), put("/x", "1"), put("/d/b", "1"), put("/d/_h", "1"), put("/d/a", "2")) // @1..@5
	w := mustWatch(t, s, "/d", true, true, 1)
	if s.WatcherCount() != 1 {
		t.Fatalf("stream from history not registered: count %d", s.WatcherCount())
	}
	mustApply(t, s, t0, put("/d/c", "1"), put("/y", "1"), Request{Method: MethodDelete, Path: "/d", Recursive: true}) // @6..@8
	evs, closed := received(w)
	want := []string{"set /d/a@1", "set /d/b@3", "set /d/a@5", "set /d/c@6", "delete /d@8"}
	if got := keysAndIndexes(evs); !slices.Equal(got, want) || closed {
		t.Fatalf("got %v closed %v, want %v", got, closed, want)
	}
	w.Remove()
	if _, closed := received(w); !closed || w.Err() != nil || s.WatcherCount() != 0 {
		t.Fatalf("after Remove: closed %v Err %v count %d", closed, w.Err(), s.WatcherCount())
	}
}

// collectWithResume drains w and, each time it ends with ErrWatcherOverflow,
// resumes from NextIndex, as a consumer must. It stops when the current
// watcher has nothing queued and is still open.
func collectWithResume(t *testing.T, s *Store, w *Watcher, key string, recursive bool) (evs []*Event, resumes int, last *Watcher) {
	t.Helper()
	for {
		got, closed := received(w)
		evs = append(evs, got...)
		if !closed {
			return evs, resumes, w
		}
		if !errors.Is(w.Err(), ErrWatcherOverflow) {
			t.Fatalf("watcher closed with %v, want ErrWatcherOverflow", w.Err())
		}
		resumes++
		w = mustWatch(t, s, key, recursive, true, w.NextIndex())
	}
}

// TestStreamOverflowResume: a consumer that falls behind is closed with
// ErrWatcherOverflow and, resuming from NextIndex, loses and repeats nothing,
// whether the overflow happened live or while replaying history.
func TestStreamOverflowResume(t *testing.T) {
	var want []string
	for i := 1; i <= 7; i++ {
		want = append(want, "set /k@"+utoa(uint64(i)))
	}

	t.Run("live", func(t *testing.T) {
		s := New(Config{WatchBuffer: 2})
		w := mustWatch(t, s, "/k", false, true, 0)
		for range 7 {
			mustApply(t, s, t0, put("/k", "v"))
		}
		if s.WatcherCount() != 0 {
			t.Fatalf("overflowed watcher still counted")
		}
		evs, resumes, last := collectWithResume(t, s, w, "/k", false)
		if got := keysAndIndexes(evs); !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if resumes < 2 {
			t.Fatalf("%d resumes, want overflows", resumes)
		}
		mustApply(t, s, t0, put("/k", "v")) // @8 reaches the resumed watcher
		if evs, _ := received(last); len(evs) != 1 || evs[0].Index() != 8 {
			t.Fatalf("resumed watcher got %v, want set /k@8", keysAndIndexes(evs))
		}
	})
	t.Run("history replay", func(t *testing.T) {
		s := New(Config{WatchBuffer: 2})
		for range 7 {
			mustApply(t, s, t0, put("/k", "v"), put("/other", "x"))
		}
		// /k is at odd indexes 1..13.
		w := mustWatch(t, s, "/", true, true, 1)
		evs, _, _ := collectWithResume(t, s, w, "/", true)
		if len(evs) != 14 {
			t.Fatalf("got %d events, want 14: %v", len(evs), keysAndIndexes(evs))
		}
		for i, e := range evs {
			if e.Index() != uint64(i+1) {
				t.Fatalf("event %d has index %d: lost or repeated", i, e.Index())
			}
		}
	})
	t.Run("exactly a buffer of history", func(t *testing.T) {
		s := New(Config{WatchBuffer: 2})
		mustApply(t, s, t0, put("/k", "1"), put("/k", "2"))
		w := mustWatch(t, s, "/k", false, true, 1)
		mustApply(t, s, t0, put("/k", "3"))
		evs, _, _ := collectWithResume(t, s, w, "/k", false)
		if got := keysAndIndexes(evs); !slices.Equal(got, want[:3]) {
			t.Fatalf("got %v, want %v", got, want[:3])
		}
	})
}

// TestWatcherRemove: Remove closes the channel with a nil Err, unregisters
// and is idempotent; a removed watcher receives nothing more.
func TestWatcherRemove(t *testing.T) {
	s := New(Config{})
	a := mustWatch(t, s, "/k", false, false, 0)
	b := mustWatch(t, s, "/k", true, true, 0)
	c := mustWatch(t, s, "/k", false, true, 0)
	if s.WatcherCount() != 3 {
		t.Fatalf("count %d, want 3", s.WatcherCount())
	}
	a.Remove()
	b.Remove()
	b.Remove()
	if s.WatcherCount() != 1 {
		t.Fatalf("count %d after removes, want 1", s.WatcherCount())
	}
	mustApply(t, s, t0, put("/k", "v"))
	for _, w := range []*Watcher{a, b} {
		if evs, closed := received(w); len(evs) != 0 || !closed || w.Err() != nil {
			t.Fatalf("removed watcher: %v closed %v err %v", keysAndIndexes(evs), closed, w.Err())
		}
	}
	if evs, closed := received(c); len(evs) != 1 || closed {
		t.Fatalf("remaining watcher: %v closed %v", keysAndIndexes(evs), closed)
	}
}

// TestWatcherCountInStats: the watchers member of /v2/stats/store is the
// number of registered watchers (§1.3.9).
func TestWatcherCountInStats(t *testing.T) {
	s := New(Config{WatchBuffer: 1})
	mustApply(t, s, t0, put("/k", "v")) // @1
	steps := []struct {
		name string
		do   func()
		want uint64
	}{
		{"start", func() {}, 0},
		{"three live watches", func() {
			mustWatch(t, s, "/k", false, false, 0)
			mustWatch(t, s, "/k", false, true, 0)
			mustWatch(t, s, "/", true, true, 0)
		}, 3},
		{"a one-shot from history is not registered", func() { mustWatch(t, s, "/k", false, false, 1) }, 3},
		{"a rejected watch is not registered", func() { s.Watch("/k", false, false, 0) }, 4},
		{"a write fires the one-shot; streams stay", func() { mustApply(t, s, t0, put("/k", "w")) }, 2},
		{"a second write overflows both streams (buffer 1)", func() { mustApply(t, s, t0, put("/k", "x")) }, 0},
	}
	for _, st := range steps {
		st.do()
		if got := statsMap(t, s)["watchers"]; got != st.want || uint64(s.WatcherCount()) != st.want {
			t.Fatalf("%s: stats watchers %d, WatcherCount %d, want %d", st.name, got, s.WatcherCount(), st.want)
		}
	}
}

// TestWatcherNeverBlocksWrite: watchers whose consumers never read cannot
// stall the applier; a slow stream is closed, one-shots take their one event.
func TestWatcherNeverBlocksWrite(t *testing.T) {
	s := New(Config{WatchBuffer: 4})
	var streams []*Watcher
	for range 100 {
		streams = append(streams, mustWatch(t, s, "/k", false, true, 0))
		mustWatch(t, s, "/", true, false, 0)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			if _, err := s.Apply(&Request{Method: MethodPut, Path: "/k", Value: "v"}, t0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("writes blocked behind watchers that are not read")
	}
	if s.WatcherCount() != 0 {
		t.Fatalf("%d watchers left", s.WatcherCount())
	}
	for _, w := range streams {
		evs, closed := received(w)
		if len(evs) != 4 || !closed || !errors.Is(w.Err(), ErrWatcherOverflow) || w.NextIndex() != 5 {
			t.Fatalf("stream: %d events, closed %v, err %v, next %d", len(evs), closed, w.Err(), w.NextIndex())
		}
	}
}

// TestWatchConcurrency runs watches, removals, reads and writes at once; it
// is meant for -race and checks that each consumer sees strictly increasing
// indexes.
func TestWatchConcurrency(t *testing.T) {
	s := New(Config{WatchBuffer: 8})
	const writes = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range writes {
			r := put("/c/"+utoa(uint64(i%10)), "v")
			if _, err := s.Apply(&r, at(time.Duration(i)*time.Millisecond)); err != nil {
				t.Error(err)
				return
			}
			if i%100 == 0 {
				s.DeleteExpiredKeys(at(time.Duration(i) * time.Millisecond))
			}
		}
	}()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := uint64(1) // from history: 0 could start after the last write
			for s.Index() < writes {
				w, err := s.Watch("/c", true, true, next)
				if err != nil {
					t.Error(err)
					return
				}
				var last uint64
				for e := range w.EventChan() {
					if e.Index() <= last {
						t.Errorf("consumer %d: index %d after %d", g, e.Index(), last)
					}
					last = e.Index()
					if last >= writes || last%50 == 0 {
						w.Remove()
					}
				}
				next = w.NextIndex()
				s.Get("/c", true, true, t0)
				_ = s.Stats()
			}
		}()
	}
	wg.Wait()
	if s.Index() != writes {
		t.Fatalf("index %d, want %d", s.Index(), writes)
	}
}
