package cluster

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/disk"
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

// BenchmarkCommandEncode measures encoding a 100-byte put with its
// checksum frame, the part of the write path the checksum adds to; the
// unframed encoding is the baseline.
func BenchmarkCommandEncode(b *testing.B) {
	c := command{typ: cmdRequest, now: time.Unix(1, 0), req: &store.Request{Method: store.MethodPut, Path: "/bench/12345", Value: string(make([]byte, 100))}}
	b.Run("framed", func(b *testing.B) {
		for b.Loop() {
			c.encode()
		}
	})
	b.Run("unframed", func(b *testing.B) {
		for b.Loop() {
			c.encodeBody(make([]byte, 0, c.sizeHint()))
		}
	})
}

// BenchmarkScanLog measures the start-up check of a log of 15,000 entries
// of 100-byte puts (about what a member keeps: snapshot_count 10,000 plus
// trailing entries).
func BenchmarkScanLog(b *testing.B) {
	path := filepath.Join(b.TempDir(), disk.LogFile)
	logs, err := disk.OpenLog(path, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close()
	const entries = 15000
	batch := make([]*raft.Log, 0, entries)
	for i := range entries {
		c := command{typ: cmdRequest, now: time.Unix(int64(i), 0), req: &store.Request{Method: store.MethodPut,
			Path: "/bench/" + strconv.Itoa(i), Value: string(make([]byte, 100))}}
		batch = append(batch, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: c.encode()})
	}
	if err := logs.StoreLogs(batch); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := disk.ScanLog(logs.BoltStore, path, 0); err != nil {
			b.Fatal(err)
		}
	}
}
