package cluster

import (
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/store"
)

// BenchmarkApplyBatch measures the FSM applying 64 committed 100-byte
// puts: as one batch (raft's BatchingFSM, what raft calls) and one entry at
// a time (raft.FSM.Apply, before batching), with a linearizable reader
// waiting on each of 8 indexes in the batch.
//
//	go test ./cluster -run - -bench ApplyBatch -benchmem
func BenchmarkApplyBatch(b *testing.B) {
	const batch = 64
	value := string(make([]byte, 100))
	data := make([][]byte, batch)
	for i := range data {
		c := command{typ: cmdRequest, now: time.Unix(1, 0), req: &store.Request{Method: store.MethodPut,
			Path: "/bench/" + strconv.Itoa(i), Value: value}}
		data[i] = c.encode()
	}
	for _, mode := range []string{"batch", "single"} {
		b.Run(mode, func(b *testing.B) {
			f := newFSM(store.New(store.Config{}), nil)
			logs := make([]*raft.Log, batch)
			next := uint64(1)
			for b.Loop() {
				for i := range logs {
					logs[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data[i]}
					next++
				}
				for i := 0; i < batch; i += batch / 8 {
					f.appliedCh(logs[i].Index)
				}
				if mode == "batch" {
					f.ApplyBatch(logs)
					continue
				}
				for _, l := range logs {
					f.Apply(l)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/entry")
		})
	}
}

// BenchmarkProposeAnswer measures the leader's answer to a forwarded put:
// encoded on the leader, decoded on the follower, in the binary encoding
// and in JSON (what members before it answer).
func BenchmarkProposeAnswer(b *testing.B) {
	v := string(make([]byte, 100))
	exp := time.Unix(1700000000, 0)
	ev := &store.Event{Action: store.ActionSet, EtcdIndex: 42,
		Node:     &store.NodeExtern{Key: "/bench/12345", Value: &v, ModifiedIndex: 42, CreatedIndex: 40, Expiration: &exp, TTL: 10},
		PrevNode: &store.NodeExtern{Key: "/bench/12345", Value: &v, ModifiedIndex: 40, CreatedIndex: 40}}
	for _, bin := range []bool{true, false} {
		name := map[bool]string{true: "binary", false: "json"}[bin]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				ans, err := encodeProposeAnswer(ev, 7, bin)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := decodeProposeAnswer(ans); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
