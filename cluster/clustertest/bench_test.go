package clustertest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// BenchmarkPropose3 measures committed 100-byte puts on an in-process
// 3-member cluster (fsync on, peers linked in memory) proposed on the
// leader and on a follower, which forwards them and answers from the
// leader's result; "1" is one proposer at a time, "64" 64 at once.
//
//	go test ./cluster/clustertest -run - -bench Propose3 -benchmem
func BenchmarkPropose3(b *testing.B) {
	c := New(b, 3)
	leader := c.Leader()
	value := string(make([]byte, 100))
	var key atomic.Int64
	put := func(i int) error {
		k := "/bench/" + strconv.FormatInt(key.Add(1)%10000, 10)
		_, err := c.Node(i).Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: k, Value: value})
		return err
	}
	for _, target := range []struct {
		name string
		i    int
	}{{"leader", leader}, {"follower", (leader + 1) % 3}} {
		b.Run(target.name+"/1", func(b *testing.B) {
			for b.Loop() {
				if err := put(target.i); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(target.name+"/64", func(b *testing.B) {
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := put(target.i); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
