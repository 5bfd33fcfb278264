package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// Each write that no other follows is announced to every follower by the
// leader's commit notice, which the follower accepts (it holds the entry,
// and commits up to it). A notice refused because the follower was behind
// is sent again (here for as long as a minute, so that a loaded machine
// cannot make the test flaky), and one that found the follower busy with
// an earlier notice follows it.
func TestLoneCommitNoticed(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	told := map[raft.ServerID]uint64{} // the highest index each follower accepted
	nodes, li := startThreeWith(t, clk, func(c *Config) {
		c.noticeHorizon = time.Minute
		c.noticeAccepted = func(id raft.ServerID, index uint64) {
			mu.Lock()
			defer mu.Unlock()
			told[id] = max(told[id], index)
		}
	})
	leader := nodes[li]
	for i := range 5 {
		if _, err := leader.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/lone", Value: itoa(i)}); err != nil {
			t.Fatal(err)
		}
		want := leader.fsm.applied.Load() // the write's raft index, or a later one
		for j, f := range nodes {
			if j == li {
				continue
			}
			id := f.notice.self
			poll.Until(t, waitTimeout, f.cfg.Name+" accepting the notice of the lone write", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return told[id] >= want
			})
			poll.Until(t, waitTimeout, f.cfg.Name+" applying the lone write", func() bool {
				return f.fsm.applied.Load() >= want
			})
			ev, err := f.Store().Get("/lone", false, false, clk.now())
			if err != nil || *ev.Node.Value != itoa(i) {
				t.Fatalf("%s: /lone is %v (%v), want %q", f.cfg.Name, ev, err, itoa(i))
			}
		}
	}
}
