package discovery

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// benchIndex is a zone of 1,000 services of 3 instances each, plus web with
// 60 instances, with key TTLs as heartbeating registrations have.
func benchIndex(b *testing.B) (*store.Store, *Index) {
	st := store.New(store.Config{})
	for s := range 1000 {
		for i := range 3 {
			apply(b, st, t0, setTTL(fmt.Sprintf("/svc%d/i%d", s, i), rec(fmt.Sprintf("10.%d.%d.%d", s/256, s%256, i), 80), 10))
		}
	}
	for i := range 60 {
		apply(b, st, t0, setTTL(fmt.Sprintf("/web/web-%d", i), rec(fmt.Sprintf("10.200.0.%d", i), 8080), 10))
	}
	return st, NewIndex(st, Config{}, func() time.Time { return t0 })
}

func BenchmarkLookup(b *testing.B) {
	_, x := benchIndex(b)
	for _, bb := range []struct {
		name, qname string
		n           int
	}{
		{"Service60", "web.cairn.internal.", 60},
		{"Instance", "web-7.web.cairn.internal.", 1},
		{"Wildcard", "*.svc7.cairn.internal.", 3},
		{"Missing", "nope.cairn.internal.", 0},
	} {
		if n := len(x.Lookup(bb.qname)); n != bb.n {
			b.Fatalf("%s: %d instances, want %d", bb.qname, n, bb.n)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				x.Lookup(bb.qname)
			}
		})
	}
	b.Run("Service60Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				x.Lookup("web.cairn.internal.")
			}
		})
	})
}

func BenchmarkExists(b *testing.B) {
	_, x := benchIndex(b)
	for _, bb := range []struct {
		name, qname string
		want        bool
	}{
		{"Service", "web.cairn.internal.", true},
		{"Missing", "web-99.web.cairn.internal.", false},
	} {
		if x.Exists(bb.qname) != bb.want {
			b.Fatalf("Exists(%s) != %v", bb.qname, bb.want)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				x.Exists(bb.qname)
			}
		})
	}
}

// BenchmarkApply is the index's update throughput: one store event applied
// under the write lock, as Run does when events come one by one.
func BenchmarkApply(b *testing.B) {
	for _, bb := range []struct {
		name string
		req  func(i int) store.Request
	}{
		{"Set", func(i int) store.Request {
			return setTTL(fmt.Sprintf("/web/web-%d", i%60), rec(fmt.Sprintf("10.200.0.%d", i%60), 8000+i%1000), 10)
		}},
		{"Refresh", func(i int) store.Request { return refresh(fmt.Sprintf("/web/web-%d", i%60), 10, false) }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			st, x := benchIndex(b)
			// Events made up front, so that the store's cost is not measured.
			evs := make([]*store.Event, 6000)
			for i := range evs {
				r := bb.req(i)
				e, err := st.Apply(&r, t0.Add(time.Duration(i)*time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				evs[i] = e
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				x.mu.Lock()
				x.apply(evs[i%len(evs)])
				x.mu.Unlock()
				i++
			}
			b.StopTimer()
			if n := len(x.Lookup("web.cairn.internal.")); n != 60 {
				b.Fatalf("%d instances", n)
			}
		})
	}
}

// BenchmarkRebuild is the cost of building the index of 3,060 registrations
// from the store (start, snapshot restore).
func BenchmarkRebuild(b *testing.B) {
	_, x := benchIndex(b)
	b.ReportAllocs()
	for b.Loop() {
		x.rebuild()
	}
}
