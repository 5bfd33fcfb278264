package store

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestEventOverhead: the fixed part of eventSize covers what an event
// allocates besides its strings.
func TestEventOverhead(t *testing.T) {
	var tm time.Time
	var s string
	min := unsafe.Sizeof(Event{}) + 2*unsafe.Sizeof(NodeExtern{}) + 2*unsafe.Sizeof(s) +
		2*unsafe.Sizeof(tm) + unsafe.Sizeof(histSlot{})
	if eventOverhead < min {
		t.Fatalf("eventOverhead %d < %d, the size of an event's structs", eventOverhead, min)
	}
}

func TestEventSize(t *testing.T) {
	s := New(Config{})
	v := strings.Repeat("v", 1000)
	w := strings.Repeat("w", 300)
	key := "/k"
	tests := []struct {
		name string
		req  Request
		want int64
	}{
		{"create", put(key, v), int64(len(key)) + 1000},
		{"replace: value and previous value", put(key, w), int64(len(key)) + 300 + 1000},
		{"refresh: the kept value once", Request{Method: MethodPut, Path: key, Refresh: true, HasTTL: true, TTL: 60}, int64(len(key)) + 300},
		{"update to empty", Request{Method: MethodPut, Path: key, PrevExist: PrevExistTrue}, int64(len(key)) + 300},
		{"delete: the previous value", del(key), int64(len(key))},
		{"dir", putDir("/dir"), 4},
		{"delete dir", Request{Method: MethodDelete, Path: "/dir", Dir: true}, 4},
	}
	for _, tt := range tests {
		e := mustApply(t, s, t0, tt.req)
		if got := eventSize(e) - eventOverhead; got != tt.want {
			t.Errorf("%s: eventSize - overhead = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestHistoryByteBound: events past the byte bound are dropped oldest
// first, a watch from a dropped index is etcd's 401 as for the count
// bound, and the newest event is kept even when it alone is over.
func TestHistoryByteBound(t *testing.T) {
	const value = 10_000
	per := int64(eventOverhead + len("/k0") + value) // a create
	s := New(Config{HistorySize: 1000, HistoryBytes: 5*per + per/2})
	v := strings.Repeat("x", value)
	for i := range 10 {
		mustApply(t, s, t0, put("/k"+utoa(uint64(i%10)), v)) // @1..@10, all creates
	}
	start, last := s.HistoryRange()
	if start != 6 || last != 10 {
		t.Fatalf("HistoryRange [%d,%d], want [6,10]", start, last)
	}
	if n, b := s.HistoryUsage(); n != 5 || b != 5*per {
		t.Fatalf("HistoryUsage %d events %d bytes, want 5 and %d", n, b, 5*per)
	}
	_, err := s.Watch("/", true, false, 5)
	wantErr(t, err, EcodeEventIndexCleared, "the requested history has been cleared [6/5]", 10)
	w := mustWatch(t, s, "/k6", false, false, 6)
	if evs, closed := received(w); !closed || !slices.Equal(keysAndIndexes(evs), []string{"set /k6@7"}) {
		t.Fatalf("watch /k6 from 6: %v (closed %v)", keysAndIndexes(evs), closed)
	}

	// One event over the whole bound: it alone is kept.
	big := strings.Repeat("y", int(6*per))
	mustApply(t, s, t0, put("/big", big)) // @11
	if start, last := s.HistoryRange(); start != 11 || last != 11 {
		t.Fatalf("after an oversized event: HistoryRange [%d,%d], want [11,11]", start, last)
	}
	if n, b := s.HistoryUsage(); n != 1 || b != eventOverhead+4+6*per {
		t.Fatalf("after an oversized event: HistoryUsage %d, %d", n, b)
	}
	// Small events fill in behind it and push it out.
	mustApply(t, s, t0, put("/s", "1"))
	if start, last := s.HistoryRange(); start != 12 || last != 12 {
		t.Fatalf("after a small event: HistoryRange [%d,%d], want [12,12]", start, last)
	}
	if n, b := s.HistoryUsage(); n != 1 || b != eventOverhead+2+1 {
		t.Fatalf("after a small event: HistoryUsage %d, %d", n, b)
	}
}

// TestHistoryCountAndByteBound: whichever bound is tighter decides, and the
// byte count follows every drop.
func TestHistoryCountAndByteBound(t *testing.T) {
	s := New(Config{HistorySize: 3, HistoryBytes: 1 << 20})
	for i := range 10 {
		mustApply(t, s, t0, put("/k", strings.Repeat("a", i)))
	}
	// Events @8..@10 replace values of 6, 7 and 8 bytes with 7, 8 and 9.
	want := int64(3*(eventOverhead+2) + 6 + 7 + 7 + 8 + 8 + 9)
	if n, b := s.HistoryUsage(); n != 3 || b != want {
		t.Fatalf("HistoryUsage %d events %d bytes, want 3 and %d", n, b, want)
	}
	if start, last := s.HistoryRange(); start != 8 || last != 10 {
		t.Fatalf("HistoryRange [%d,%d], want [8,10]", start, last)
	}
}

// TestHistoryDeterministic: replicas applying the same requests with the
// same bounds keep the same window, event for event, and so does a replica
// restored from a snapshot taken at any point that then applies the rest:
// what is kept is the longest run of newest events within both bounds,
// whatever the order of adds and drops that led there.
func TestHistoryDeterministic(t *testing.T) {
	cfg := Config{HistorySize: 400, HistoryBytes: 64 << 10}
	rng := rand.New(rand.NewPCG(1, 2))
	var reqs []Request
	var nows []time.Time
	for i := range 2000 {
		k := "/d" + utoa(uint64(rng.IntN(4))) + "/k" + utoa(uint64(rng.IntN(20)))
		var r Request
		switch rng.IntN(10) {
		case 0:
			r = del(k)
		case 1:
			r = Request{Method: MethodPut, Path: k, Refresh: true, HasTTL: true, TTL: 5}
		case 2:
			r = withTTL(put(k, strings.Repeat("t", rng.IntN(100))), uint64(1+rng.IntN(3)))
		case 3:
			r = Request{Method: MethodDelete, Path: "/d" + utoa(uint64(rng.IntN(4))), Recursive: true}
		default:
			// Mostly small values, sometimes one a third of the bound.
			n := rng.IntN(200)
			if rng.IntN(50) == 0 {
				n = 20 << 10
			}
			r = put(k, strings.Repeat("v", n))
		}
		reqs = append(reqs, r)
		nows = append(nows, at(time.Duration(i)*sec))
	}
	apply := func(s *Store, from, to int) {
		for i := from; i < to; i++ {
			s.Apply(&reqs[i], nows[i]) // failures (missing keys) are part of the sequence
			if i%7 == 0 {
				s.DeleteExpiredKeys(nows[i])
			}
		}
	}
	a, b := New(cfg), New(cfg)
	apply(a, 0, len(reqs))
	apply(b, 0, len(reqs))
	end := nows[len(nows)-1]
	want := stateOf(t, a, end)
	if n, _ := a.HistoryUsage(); n >= cfg.HistorySize || n < 10 {
		t.Fatalf("history holds %d events: the byte bound should decide, not the count", n)
	}
	compareStates(t, stateOf(t, b, end), want)
	if _, bytesA := a.HistoryUsage(); bytesA > cfg.HistoryBytes {
		t.Fatalf("history holds %d bytes, over the bound %d", bytesA, cfg.HistoryBytes)
	}
	for _, cut := range []int{1, 500, 1333, len(reqs)} {
		src := New(cfg)
		apply(src, 0, cut)
		r := restored(t, src, cfg)
		apply(r, cut, len(reqs))
		compareStates(t, stateOf(t, r, end), want)
		_, wb := a.HistoryUsage()
		if _, rb := r.HistoryUsage(); rb != wb {
			t.Errorf("restored at %d: history bytes %d, want %d", cut, rb, wb)
		}
	}
}

// TestRestoreSmallerHistoryBytes: a store restored with a smaller byte
// bound keeps the newest events that fit it.
func TestRestoreSmallerHistoryBytes(t *testing.T) {
	s := New(Config{})
	for i := range 20 {
		mustApply(t, s, t0, put("/k"+utoa(uint64(i)), strings.Repeat("v", 1000)))
	}
	per := int64(eventOverhead + 1000 + len("/k10"))
	r := restored(t, s, Config{HistoryBytes: 4 * per})
	if start, last := r.HistoryRange(); start != 17 || last != 20 {
		t.Fatalf("HistoryRange [%d,%d], want [17,20]", start, last)
	}
	if want := historyJSON(t, s); !slices.Equal(historyJSON(t, r), want[len(want)-4:]) {
		t.Fatalf("kept history differs from the newest four events")
	}
}
