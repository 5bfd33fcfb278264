package e2e

// A rolling restart of a 3-member cluster of real processes, one member at
// a time with SIGTERM, under a steady writer (issue 16: planned restarts
// without an outage). Linux only, for clustertest.StartProcs.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/v2client"
)

// TestRollingRestart: every member is restarted in turn, the leader
// included, while one client writes without pause through the members in
// turn. The stopping leader hands the leadership over (it says so in its
// log), no acknowledged write is lost, and the longest pause between two
// acknowledged writes is reported (the figure of docs/operations.md: a
// time, so logged, not asserted).
func TestRollingRestart(t *testing.T) {
	p := startProcs(t, 3, clustertest.ProcOptions{})
	leader := p.Leader(t)
	// A client as an application has one: every member, failing over.
	var eps []string
	for i := range p.Len() {
		eps = append(eps, p.Proc(i).ClientURL)
	}
	cl, err := v2client.New(v2client.Config{Endpoints: eps, TLS: p.ClientTLS, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var (
		mu      sync.Mutex
		acked   []clWrite
		times   []time.Time
		failed  int
		stopped = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for k := 0; ; k++ {
			select {
			case <-stopped:
				return
			default:
			}
			key, value := fmt.Sprintf("/roll/%d", k), fmt.Sprint(k)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := cl.Set(ctx, key, value, v2client.SetOptions{})
			cancel()
			mu.Lock()
			if err != nil {
				failed++
				t.Logf("write %s: %v", key, err)
			} else {
				acked = append(acked, clWrite{key: key, value: value})
				times = append(times, time.Now())
			}
			mu.Unlock()
		}
	}()
	waitAcked := func(n int) {
		t.Helper()
		poll.Until(t, 30*time.Second, fmt.Sprint(n, " writes acknowledged"), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= n
		})
	}
	// Followers first, then the leader, as a rolling upgrade goes.
	order := []int{(leader + 1) % 3, (leader + 2) % 3, leader}
	for _, i := range order {
		mu.Lock()
		before := len(acked)
		mu.Unlock()
		waitAcked(before + 20) // writes flow before each restart
		if err := p.Restart(i); err != nil {
			t.Fatalf("restart %s: %v", p.Proc(i).Name, err)
		}
	}
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	waitAcked(n + 20)
	close(stopped)
	<-done

	if out := p.Proc(leader).Output(); !strings.Contains(out, "leadership handed over before stopping") {
		t.Errorf("the leader %s stopped without handing the leadership over; its output:\n%s", p.Proc(leader).Name, p.Proc(leader).Tail(40))
	}
	var gap time.Duration
	for k := 1; k < len(times); k++ {
		gap = max(gap, times[k].Sub(times[k-1]))
	}
	t.Logf("%d writes acknowledged, %d failed, over 3 restarts; longest pause between two acknowledged writes: %v", len(acked), failed, gap)
	for k, w := range acked {
		ev, err := clGet(p, k%3, w.key, "quorum=true")
		if err != nil || clValue(ev.Node) != w.value {
			t.Fatalf("acknowledged write %s=%s: read %+v, %v", w.key, w.value, ev, err)
		}
	}
}
