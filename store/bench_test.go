package store

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchKeys are n distinct keys spread over 100 directories.
func benchKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + "/d" + utoa(uint64(i%100)) + "/k" + utoa(uint64(i))
	}
	return keys
}

// benchStore is a store holding a "v" under every key.
func benchStore(b *testing.B, cfg Config, keys []string) *Store {
	b.Helper()
	s := New(cfg)
	for _, k := range keys {
		r := Request{Method: MethodPut, Path: k, Value: "value-of-typical-size-0123456789"}
		if _, err := s.Apply(&r, t0); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkSet is a plain PUT replacing one of 1000 existing keys (history
// in its steady state: full ring).
func BenchmarkSet(b *testing.B) {
	keys := benchKeys("/bench", 1000)
	s := benchStore(b, Config{HistorySize: 1000}, keys)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := Request{Method: MethodPut, Path: keys[i%len(keys)], Value: "v"}
		if _, err := s.Apply(&r, t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGet reads one of 1000 keys.
func BenchmarkGet(b *testing.B) {
	keys := benchKeys("/bench", 1000)
	s := benchStore(b, Config{}, keys)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(keys[i%len(keys)], false, false, t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGetRecursive10k is a sorted recursive GET of a directory of 10k
// keys in 100 subdirectories (etcdctl ls -r --sort).
func BenchmarkGetRecursive10k(b *testing.B) {
	s := benchStore(b, Config{}, benchKeys("/dir", 10_000))
	b.ReportAllocs()
	for b.Loop() {
		e, err := s.Get("/dir", true, true, t0)
		if err != nil || len(e.Node.Nodes) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchFanout1000 is one write to a key that 1000 stream watchers
// watch, including every consumer receiving its event.
func BenchmarkWatchFanout1000(b *testing.B) {
	s := New(Config{})
	ws := make([]*Watcher, 1000)
	for i := range ws {
		ws[i] = mustWatch(b, s, "/hot", false, true, 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := Request{Method: MethodPut, Path: "/hot", Value: "v"}
		if _, err := s.Apply(&r, t0); err != nil {
			b.Fatal(err)
		}
		for _, w := range ws {
			if _, ok := <-w.EventChan(); !ok {
				b.Fatalf("watcher closed: %v", w.Err())
			}
		}
	}
	if s.WatcherCount() != len(ws) {
		b.Fatalf("%d watchers left of %d", s.WatcherCount(), len(ws))
	}
}

// BenchmarkSnapshot100k captures and writes a store of 100k keys (with the
// default 100k-event history, so as many events) to io.Discard.
func BenchmarkSnapshot100k(b *testing.B) {
	s := benchStore(b, Config{}, benchKeys("/snap", 100_000))
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Snapshot().WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshot1M snapshots a store of 1M keys with 100-byte values and
// reports what the snapshot costs in memory beyond the store itself: the
// bytes it allocates (a flat copy of node headers, values shared) against
// the live heap of the store.
func BenchmarkSnapshot1M(b *testing.B) {
	pad := strings.Repeat("v", 93)
	s := New(Config{HistorySize: 1000})
	for i := range 1_000_000 {
		r := put(fmt.Sprintf("/svc/%04d/%04d", i/1000, i%1000), fmt.Sprintf("%s%07d", pad, i))
		if _, err := s.Apply(&r, t0); err != nil {
			b.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Snapshot().WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(before.HeapAlloc)/(1<<20), "store-MB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "snapshot-alloc-MB")
}

// BenchmarkExpire is one expiry: the write of a ttl=0 key and the sweep that
// expires it, with 10k other TTL keys pending in the heap.
func BenchmarkExpire(b *testing.B) {
	keys := benchKeys("/ttl", 10_000)
	s := New(Config{HistorySize: 1000})
	for _, k := range keys {
		r := withTTL(put(k, "v"), 3600)
		if _, err := s.Apply(&r, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	now := t0
	for b.Loop() {
		now = now.Add(time.Microsecond)
		r := withTTL(put("/ttl/short", "v"), 0)
		if _, err := s.Apply(&r, now); err != nil {
			b.Fatal(err)
		}
		if evs := s.DeleteExpiredKeys(now); len(evs) != 1 {
			b.Fatalf("%d expiries, want 1", len(evs))
		}
	}
}
