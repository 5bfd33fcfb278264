package store

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// richStore builds a store that exercises every part of a snapshot: nested
// and empty dirs, hidden keys, odd values, in-order keys, file and dir TTLs,
// a refresh, deletes, an expiry, failed operations and reads (stats).
func richStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s := New(cfg)
	mustApply(t, s, t0,
		put("/a/b/c", "abc"),
		put("/a/_hidden", "h"),
		put("/_top/x", "tx"),
		putDir("/empty"),
		put("/vals/empty", ""),
		put("/vals/utf8", "héllo ✓ \x00\xff <&>"),
		put("/vals/long", strings.Repeat("0123456789", 30)), // multi-byte length varint
		post("/queue", "first"),
		Request{Method: MethodPost, Path: "/queue", Dir: true},
		withTTL(put("/ttl/file", "f"), 30),
		withTTL(putDir("/ttl/dir"), 60),
		put("/ttl/dir/child", "c"),
		withTTL(put("/ttl/dir/_hc", "hc"), 45),
		withTTL(put("/gone", "g"), 1),
		put("/del/me", "x"),
	)
	mustApply(t, s, at(sec),
		withTTL(Request{Method: MethodPut, Path: "/ttl/file", PrevExist: PrevExistTrue, Refresh: true}, 40),
		Request{Method: MethodPut, Path: "/a/b/c", Value: "abc2", PrevValue: "abc"},
		Request{Method: MethodDelete, Path: "/del", Recursive: true},
	)
	if evs := s.DeleteExpiredKeys(at(2 * sec)); len(evs) != 1 {
		t.Fatalf("expected /gone to expire, got %v", keysAndIndexes(evs))
	}
	s.Apply(&Request{Method: MethodPut, Path: "/a", Value: "x"}, at(2*sec)) // 102
	s.Get("/nope", false, false, at(2*sec))
	s.Get("/a", true, true, at(2*sec))
	return s
}

// snapshotBytes writes a snapshot of s and checks WriteTo's count.
func snapshotBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.Snapshot().WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// restored is a new store restored from s's snapshot.
func restored(t testing.TB, s *Store, cfg Config) *Store {
	t.Helper()
	r := New(cfg)
	if err := r.Restore(bytes.NewReader(snapshotBytes(t, s))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return r
}

// historyJSON is every event kept for watches, with its refresh flag.
func historyJSON(t testing.TB, s *Store) []string {
	t.Helper()
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	h := s.hub.history
	out := make([]string, h.size)
	for i := range h.size {
		e := h.at(i)
		out[i] = marshal(t, e)
		if e.Refresh {
			out[i] += " refresh"
		}
	}
	return out
}

// storeState is everything observable about a store except read counters.
type storeState struct {
	index       uint64
	tree        string
	hidden      []string
	start, last uint64
	next        time.Time
	hasNext     bool
	history     []string
}

func stateOf(t testing.TB, s *Store, now time.Time) storeState {
	t.Helper()
	st := storeState{index: s.Index(), tree: getJSON(t, s, "/", true, true, now), history: historyJSON(t, s)}
	for _, p := range []string{"/a/_hidden", "/_top", "/ttl/dir/_hc"} {
		if e, err := s.Get(p, true, true, now); err == nil {
			st.hidden = append(st.hidden, marshal(t, e))
		}
	}
	st.start, st.last = s.HistoryRange()
	st.next, st.hasNext = s.NextExpiration()
	return st
}

func compareStates(t testing.TB, got, want storeState) {
	t.Helper()
	if got.index != want.index || got.start != want.start || got.last != want.last {
		t.Errorf("index %d history [%d,%d], want %d [%d,%d]", got.index, got.start, got.last, want.index, want.start, want.last)
	}
	if got.tree != want.tree {
		t.Errorf("tree:\n got %s\nwant %s", got.tree, want.tree)
	}
	if !slices.Equal(got.hidden, want.hidden) {
		t.Errorf("hidden nodes:\n got %v\nwant %v", got.hidden, want.hidden)
	}
	if got.hasNext != want.hasNext || !got.next.Equal(want.next) {
		t.Errorf("NextExpiration %v %v, want %v %v", got.next, got.hasNext, want.next, want.hasNext)
	}
	if !slices.Equal(got.history, want.history) {
		t.Errorf("history:\n got %v\nwant %v", got.history, want.history)
	}
}

// TestSnapshotRoundTrip: a restored store is indistinguishable from the
// original: tree bytes, index, history (so watches from the past), stats,
// TTLs that still expire at the right time, and behaviour of later writes.
func TestSnapshotRoundTrip(t *testing.T) {
	s := richStore(t, Config{})
	now := at(3 * sec)
	open := mustWatch(t, s, "/", true, true, 0) // a live watcher is not state
	defer open.Remove()

	wantStats := s.Stats()
	r := restored(t, s, Config{})
	gotStats := r.Stats()
	wantStats.Watchers = 0
	if gotStats != wantStats {
		t.Errorf("stats:\n got %s\nwant %s", gotStats.JSON(), wantStats.JSON())
	}
	compareStates(t, stateOf(t, r, now), stateOf(t, s, now))

	// Watches from every past index give the same answer.
	start, last := s.HistoryRange()
	for _, key := range []string{"/", "/a", "/ttl/dir/_hc", "/ttl/file", "/del/me"} {
		for i := start; i <= last; i++ {
			ws, err1 := s.Watch(key, true, false, i)
			wr, err2 := r.Watch(key, true, false, i)
			if err1 != nil || err2 != nil {
				t.Fatalf("Watch(%s, %d): %v / %v", key, i, err1, err2)
			}
			a, _ := received(ws)
			b, _ := received(wr)
			if marshal(t, a) != marshal(t, b) {
				t.Errorf("Watch(%s, %d): original %s, restored %s", key, i, marshal(t, a), marshal(t, b))
			}
			ws.Remove()
			wr.Remove()
		}
	}

	// TTLs fire at the same instants with the same events.
	for _, sweep := range []time.Duration{30 * sec, 41*sec - time.Nanosecond, 41 * sec, 46 * sec, 61 * sec, time.Hour} {
		a := s.DeleteExpiredKeys(at(sweep))
		b := r.DeleteExpiredKeys(at(sweep))
		if marshal(t, a) != marshal(t, b) {
			t.Errorf("sweep at t0+%v: original %v, restored %v", sweep, keysAndIndexes(a), keysAndIndexes(b))
		}
		if sweep == 41*sec && (len(a) != 1 || a[0].Node.Key != "/ttl/file") {
			t.Errorf("refreshed /ttl/file should expire at t0+41s: %v", keysAndIndexes(a))
		}
	}
	// Later writes behave the same (in-order names come from the index).
	for _, req := range []Request{post("/queue", "next"), put("/a/b/c", "z"), Request{Method: MethodDelete, Path: "/a", Recursive: true}} {
		a, errA := s.Apply(&req, now)
		b, errB := r.Apply(&req, now)
		if marshal(t, a) != marshal(t, b) || (errA == nil) != (errB == nil) {
			t.Errorf("%+v: original %s %v, restored %s %v", req, marshal(t, a), errA, marshal(t, b), errB)
		}
	}
	compareStates(t, stateOf(t, r, now), stateOf(t, s, now))
}

// TestSnapshotIsPointInTime: writes after Snapshot() do not leak into it.
func TestSnapshotIsPointInTime(t *testing.T) {
	s := richStore(t, Config{})
	want := stateOf(t, s, at(3*sec))
	snap := s.Snapshot()
	mustApply(t, s, at(3*sec), put("/after", "x"), Request{Method: MethodDelete, Path: "/a", Recursive: true})
	s.DeleteExpiredKeys(at(time.Hour))
	if snap.Index() != want.index {
		t.Fatalf("Snapshot.Index %d, want %d", snap.Index(), want.index)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	r := New(Config{})
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	compareStates(t, stateOf(t, r, at(3*sec)), want)
}

// TestRestoreSmallerHistory: a store configured with a smaller window keeps
// the newest events and answers 401 for older ones.
func TestRestoreSmallerHistory(t *testing.T) {
	s := richStore(t, Config{})
	_, last := s.HistoryRange()
	r := restored(t, s, Config{HistorySize: 5})
	if start, l := r.HistoryRange(); start != last-4 || l != last {
		t.Fatalf("HistoryRange [%d,%d], want [%d,%d]", start, l, last-4, last)
	}
	_, err := r.Watch("/", true, false, last-5)
	wantErr(t, err, EcodeEventIndexCleared, "the requested history has been cleared ["+utoa(last-4)+"/"+utoa(last-5)+"]", last)
	if want := historyJSON(t, s); !slices.Equal(historyJSON(t, r), want[len(want)-5:]) {
		t.Fatalf("kept history differs from the newest five events")
	}
}

// TestRestoreClosesWatchers: every open watcher ends with ErrWatcherRestored
// and can resume from NextIndex against the restored store.
func TestRestoreClosesWatchers(t *testing.T) {
	src := richStore(t, Config{})
	snap := snapshotBytes(t, src)

	s := New(Config{})
	mustApply(t, s, t0, put("/a/b/c", "old")) // @1
	ws := []*Watcher{
		mustWatch(t, s, "/a/b/c", false, false, 0),
		mustWatch(t, s, "/a", true, true, 0),
		mustWatch(t, s, "/", true, true, 0),
	}
	if err := s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if s.WatcherCount() != 0 || s.Stats().Watchers != 0 {
		t.Fatalf("watchers left after restore: %d", s.WatcherCount())
	}
	for _, w := range ws {
		evs, closed := received(w)
		if len(evs) != 0 || !closed || !errors.Is(w.Err(), ErrWatcherRestored) || w.NextIndex() != 2 {
			t.Fatalf("watcher %s: %v closed %v err %v next %d", w.key, keysAndIndexes(evs), closed, w.Err(), w.NextIndex())
		}
	}
	// Resuming the one-shot from NextIndex finds the restored history's first
	// match: the CAS of /a/b/c.
	w := mustWatch(t, s, "/a/b/c", false, false, ws[0].NextIndex())
	if evs, _ := received(w); len(evs) != 1 || evs[0].Action != ActionCompareAndSwap {
		t.Fatalf("resumed watch got %v", keysAndIndexes(evs))
	}
}

// TestRestoreRejectsBadSnapshots: every truncation and every single-byte
// corruption of a snapshot fails with ErrBadSnapshot and leaves the store,
// including its open watchers, exactly as it was.
func TestRestoreRejectsBadSnapshots(t *testing.T) {
	good := snapshotBytes(t, richStore(t, Config{}))

	target := New(Config{})
	mustApply(t, target, t0, put("/mine/k", "keep"), withTTL(put("/mine/t", "t"), 10))
	w := mustWatch(t, target, "/mine", true, true, 0)
	want := stateOf(t, target, t0)
	wantStats := writeStats(target)

	check := func(t *testing.T, name string, data []byte) {
		t.Helper()
		err := target.Restore(bytes.NewReader(data))
		if !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: Restore error %v, want ErrBadSnapshot", name, err)
		}
		if got := stateOf(t, target, t0); got.index != want.index || got.tree != want.tree ||
			!slices.Equal(got.history, want.history) || !got.next.Equal(want.next) {
			t.Fatalf("%s: store changed by a failed restore", name)
		}
		if writeStats(target) != wantStats {
			t.Fatalf("%s: stats changed by a failed restore", name)
		}
		if _, closed := received(w); closed {
			t.Fatalf("%s: failed restore closed a watcher (%v)", name, w.Err())
		}
	}
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(good); n++ {
			check(t, "first "+utoa(uint64(n))+" bytes", good[:n])
		}
	})
	t.Run("corrupted", func(t *testing.T) {
		bad := make([]byte, len(good))
		for i := range good {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				copy(bad, good)
				bad[i] ^= mask
				check(t, "byte "+utoa(uint64(i))+" ^ "+utoa(uint64(mask)), bad)
			}
		}
	})
	t.Run("not a snapshot", func(t *testing.T) {
		check(t, "json", []byte(`{"Root":{}}`))
		check(t, "empty", nil)
	})
	// The good snapshot still restores.
	if err := target.Restore(bytes.NewReader(good)); err != nil {
		t.Fatalf("good snapshot: %v", err)
	}
}

// writeStats is the store's replicated counters: without the read counters,
// which the checks themselves move, and the live watcher count.
func writeStats(s *Store) StatsSnapshot {
	st := s.Stats()
	st.GetSuccess, st.GetFail, st.Watchers = 0, 0, 0
	return st
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errDiskFull
	}
	w.n -= len(p)
	return len(p), nil
}

// TestSnapshotWriteError: a failing writer's error is returned, wrapped.
func TestSnapshotWriteError(t *testing.T) {
	snap := richStore(t, Config{}).Snapshot()
	size := int64(len(snapshotBytes(t, richStore(t, Config{}))))
	for _, limit := range []int{0, 10, int(size) / 2, int(size) - 2} {
		n, err := snap.WriteTo(&errWriter{n: limit})
		if !errors.Is(err, errDiskFull) {
			t.Errorf("limit %d: error %v, want errDiskFull", limit, err)
		}
		if n > int64(limit) {
			t.Errorf("limit %d: reported %d bytes", limit, n)
		}
	}
	if _, err := snap.WriteTo(io.Discard); err != nil {
		t.Fatal(err)
	}
}

// TestExpiryOrderSurvivesRestore: replicas must agree on every expiry and its
// index whether they replayed the log or restored a snapshot. A restore
// re-pushes TTL nodes in a different order than the log created them, so
// nodes expiring at the same instant must be ordered by something the restore
// keeps: ttlHeap.Less breaks ties by path, which also expires a directory
// before its descendants (one event, not one per descendant). etcd 3.4
// compares ExpireTime only; ties are likely in Cairn because expiry instants
// come from one raft entry's clock (ttl=0, or a dir and its key written in
// one instant).
func TestExpiryOrderSurvivesRestore(t *testing.T) {
	tests := []struct {
		name  string
		setup []Request
	}{
		{name: "dir and child expire together",
			setup: []Request{
				withTTL(put("/a/b", "v"), 5), // @1, creates /a
				withTTL(Request{Method: MethodPut, Path: "/a", Dir: true, PrevExist: PrevExistTrue}, 5), // @2
			}},
		{name: "siblings expire together",
			setup: []Request{
				withTTL(put("/m", "v"), 5), withTTL(put("/c", "v"), 5), withTTL(put("/x", "v"), 5),
				withTTL(put("/a", "v"), 5), withTTL(put("/q", "v"), 5), withTTL(put("/b", "v"), 5),
				withTTL(put("/z", "v"), 5), withTTL(put("/k", "v"), 5), withTTL(put("/d", "v"), 5),
				withTTL(put("/y", "v"), 5), withTTL(put("/e", "v"), 5), withTTL(put("/w", "v"), 5),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			mustApply(t, s, t0, tt.setup...)
			r := restored(t, s, Config{})
			a := keysAndIndexes(s.DeleteExpiredKeys(at(5 * sec)))
			b := keysAndIndexes(r.DeleteExpiredKeys(at(5 * sec)))
			if !slices.Equal(a, b) || s.Index() != r.Index() {
				t.Errorf("simultaneous expiries diverge after restore:\noriginal %v (index %d)\nrestored %v (index %d)",
					a, s.Index(), b, r.Index())
			}
		})
	}
}

// TestSnapshotConcurrency: a snapshot is written while writes, sweeps, reads
// and watches continue, and Restore runs against concurrent readers; meant
// for -race. The written snapshot must restore to the captured index.
func TestSnapshotConcurrency(t *testing.T) {
	s := richStore(t, Config{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := withTTL(put("/busy/"+utoa(uint64(i%50)), "v"), 1)
			s.Apply(&r, at(time.Duration(i)*time.Millisecond))
			s.DeleteExpiredKeys(at(time.Duration(i) * time.Millisecond))
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Get("/", true, true, t0)
			if w, err := s.Watch("/busy", true, true, 0); err == nil {
				w.Remove()
			}
			_ = s.Stats()
			s.HistoryRange()
		}
	}()
	var snaps [][]byte
	var indexes []uint64
	for range 5 {
		snap := s.Snapshot()
		var buf bytes.Buffer
		if _, err := snap.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		snaps, indexes = append(snaps, buf.Bytes()), append(indexes, snap.Index())
	}
	for i, b := range snaps {
		if err := s.Restore(bytes.NewReader(b)); err != nil {
			t.Fatalf("restore %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	r := New(Config{})
	if err := r.Restore(bytes.NewReader(snaps[4])); err != nil || r.Index() != indexes[4] {
		t.Fatalf("restored index %d (%v), want %d", r.Index(), err, indexes[4])
	}
}
