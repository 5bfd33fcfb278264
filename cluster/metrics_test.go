package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// gauge reads the value of the counter or gauge name from reg (0 when
// absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return 0
}

// Leader metrics as etcd's: a member counts every leader it sees take over,
// and tells whether it knows of a leader and whether it is the leader.
func TestLeaderMetrics(t *testing.T) {
	clk := newFakeClock()
	hub := NewInmemHub()
	regs := make([]*prometheus.Registry, 3)
	nodes := make([]*Node, 3)
	addr := func(i int) string { return fmt.Sprintf("10.0.0.%d:7001", i+1) }
	for i := range nodes {
		regs[i] = prometheus.NewRegistry()
		cfg := Config{Name: fmt.Sprintf("n%d", i+1), DataDir: t.TempDir(), PeerAddr: addr(i),
			Network: hub.Network(addr(i)), Now: clk.now, Registry: regs[i]}
		if i > 0 {
			cfg.Peers = []string{addr(0)}
		}
		nodes[i] = startNodeWith(t, cfg)
	}
	value := func(i int, name string) float64 { return gauge(t, regs[i], name) }
	// leaderOf polls until exactly one of the running members reports
	// itself leader, and returns it.
	leaderOf := func(running ...int) int {
		t.Helper()
		leader := -1
		poll.Until(t, waitTimeout, fmt.Sprintf("one of %v with cairn_raft_is_leader 1", running), func() bool {
			leader = -1
			for _, i := range running {
				if value(i, "cairn_raft_is_leader") == 1 {
					if leader >= 0 {
						return false
					}
					leader = i
				}
			}
			return leader >= 0
		})
		return leader
	}
	// Each member has seen a leader (more than one if an election came
	// in between on a slow machine) and knows of one.
	seen := make([]float64, 3)
	for i := range nodes {
		poll.Until(t, waitTimeout, fmt.Sprintf("n%d to see a leader", i+1), func() bool {
			seen[i] = value(i, "cairn_leader_changes_seen_total")
			return seen[i] >= 1 && value(i, "cairn_has_leader") == 1
		})
	}
	leader := leaderOf(0, 1, 2)

	// The leader stops: the others see another one take over.
	if err := nodes[leader].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rest []int
	for i := range nodes {
		if i != leader {
			rest = append(rest, i)
		}
	}
	for _, i := range rest {
		poll.Until(t, waitTimeout, fmt.Sprintf("n%d to see a new leader", i+1), func() bool {
			return value(i, "cairn_leader_changes_seen_total") > seen[i] && value(i, "cairn_has_leader") == 1
		})
	}
	leader = leaderOf(rest...)

	// Without a quorum the survivor knows of no leader.
	if err := nodes[leader].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	survivor := rest[0] + rest[1] - leader
	poll.Until(t, waitTimeout, "the survivor to know of no leader", func() bool {
		return value(survivor, "cairn_has_leader") == 0 && value(survivor, "cairn_raft_is_leader") == 0
	})
}
