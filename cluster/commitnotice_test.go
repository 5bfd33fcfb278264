package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// A write that no other follows reaches every follower's store although
// raft's CommitTimeout, the only other way a follower would learn that it
// is committed, is 30 s, three times the poll's bound: the leader's commit
// notice told them. (Without notices the members do not even get ready
// within the bound, and their shutdown waits out the commit timeout.)
func TestLoneCommitReachesFollowers(t *testing.T) {
	clk := newFakeClock()
	nodes, li := startThreeWith(t, clk, func(c *Config) { c.commitTimeout = 30 * time.Second })
	leader := nodes[li]
	for i := range 3 { // each a lone write: the next waits for the followers
		if _, err := leader.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/lone", Value: itoa(i)}); err != nil {
			t.Fatal(err)
		}
		want := leader.fsm.applied.Load() // the write's raft index, or a later one
		for _, f := range nodes {
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
