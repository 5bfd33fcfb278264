package cluster

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// BenchmarkPropose measures committed writes on a single node with fsync,
// 64 concurrent proposers (raft groups their entries into shared fsyncs).
func BenchmarkPropose(b *testing.B) {
	n := startBenchNode(b)
	var i atomic.Int64
	value := string(make([]byte, 100))
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := "/bench/" + strconv.FormatInt(i.Add(1)%10000, 10)
			if _, err := n.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: k, Value: value}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReadBarrier measures linearizable read confirmation on a leader.
func BenchmarkReadBarrier(b *testing.B) {
	n := startBenchNode(b)
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := n.ReadBarrier(context.Background()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// startBenchNode starts a single-member node with fsync and waits until it
// serves linearizable reads; it stops when the benchmark ends.
func startBenchNode(b *testing.B) *Node {
	b.Helper()
	n, err := New(Config{Name: "b", DataDir: b.TempDir(), ElectionTimeout: 200 * time.Millisecond,
		HeartbeatInterval: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Shutdown(context.Background()) })
	poll.Until(b, waitTimeout, "leader ready", func() bool { return n.ReadBarrier(context.Background()) == nil })
	return n
}
