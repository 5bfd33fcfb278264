package clustertest_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
)

// TestForwardedWriteThenLinearizableRead: a follower answers a forwarded
// write from the leader's result without waiting to apply it, yet a
// linearizable read through that follower right after sees it (read your
// writes), also with many writers at once. Only acknowledged writes are
// checked: on a loaded machine the leader may lose its lease and fail a
// write, which is no violation.
func TestForwardedWriteThenLinearizableRead(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.Leader()
	f := c.Node((leader + 1) % 3)
	var checked atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 10 {
				key, v := "/ryw/"+strconv.Itoa(w), strconv.Itoa(i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ev, err := f.Propose(ctx, put(key, v))
				cancel()
				if err != nil {
					t.Logf("writer %d: write not acknowledged: %v", w, err)
					continue
				}
				if ev.Node == nil || ev.Node.Value == nil || *ev.Node.Value != v {
					t.Errorf("writer %d: write of %q answered %+v", w, v, ev.Node)
					return
				}
				got, err := linearGet(f, key)
				if err != nil {
					t.Logf("writer %d: linearizable read failed: %v", w, err)
					continue
				}
				if got != v {
					t.Errorf("writer %d read %q through the follower right after its write of %q was acknowledged", w, got, v)
					return
				}
				checked.Add(1)
			}
		})
	}
	wg.Wait()
	if checked.Load() == 0 {
		t.Fatal("no write was acknowledged and read back")
	}
}
