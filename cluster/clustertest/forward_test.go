package clustertest_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
)

// TestForwardedWriteThenLinearizableRead: a follower answers a forwarded
// write from the leader's result without waiting to apply it, yet a
// linearizable read through that follower right after sees it (read your
// writes), also with many writers at once.
func TestForwardedWriteThenLinearizableRead(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.Leader()
	f := c.Node((leader + 1) % 3)
	for i := range 20 {
		v := strconv.Itoa(i)
		ev := propose(t, f, put("/ryw", v))
		if ev.Node == nil || *ev.Node.Value != v {
			t.Fatalf("write %d answered %+v", i, ev.Node)
		}
		if got, err := linearGet(f, "/ryw"); err != nil || got != v {
			t.Fatalf("linearizable read after forwarded write %d: %q, %v", i, got, err)
		}
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 10 {
				key, v := "/ryw-many/"+strconv.Itoa(w), strconv.Itoa(i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := f.Propose(ctx, put(key, v))
				cancel()
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if got, err := linearGet(f, key); err != nil || got != v {
					t.Errorf("writer %d read %q, %v after writing %q", w, got, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
}
