package store

import (
	"strings"
	"testing"
)

// BenchmarkHistoryAdd records one event in a full history: the cost every
// write pays to keep the watch window. "small" events (a 32-byte value
// replacing another) are bounded by the count; "1MB" events by the bytes.
func BenchmarkHistoryAdd(b *testing.B) {
	for _, bc := range []struct {
		name  string
		value string
	}{
		{"small", strings.Repeat("v", 32)},
		{"1MB", strings.Repeat("v", 1<<20)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newEventHistory(1000, DefaultHistoryBytes)
			ev := func(i uint64) *Event {
				v := bc.value
				return &Event{Action: ActionSet, EtcdIndex: i,
					Node:     &NodeExtern{Key: "/bench/key", Value: &v, ModifiedIndex: i, CreatedIndex: i},
					PrevNode: &NodeExtern{Key: "/bench/key", Value: &v, ModifiedIndex: i - 1, CreatedIndex: i - 1}}
			}
			// Fill first so the loop measures the steady state: one
			// event in, at least one out.
			i := uint64(1)
			for ; i <= 2000; i++ {
				h.add(ev(i))
			}
			events := make([]*Event, 4096)
			for j := range events {
				events[j] = ev(i + uint64(j))
			}
			b.ReportAllocs()
			j := 0
			for b.Loop() {
				e := events[j%len(events)]
				e.Node.ModifiedIndex = i
				h.add(e)
				i++
				j++
			}
		})
	}
}
