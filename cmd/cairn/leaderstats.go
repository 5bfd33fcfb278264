package main

import (
	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http"
)

// apiNode is a cluster.Node as the v2 API sees it: the node itself
// (Cluster, MemberAdmin) plus its follower measurements in v2http's shape
// (LeaderStatser), which package cluster cannot name.
type apiNode struct{ *cluster.Node }

var (
	_ v2http.Cluster       = apiNode{}
	_ v2http.MemberAdmin   = apiNode{}
	_ v2http.LeaderStatser = apiNode{}
)

// LeaderStats implements v2http.LeaderStatser.
func (n apiNode) LeaderStats() (leader uint64, followers map[uint64]v2http.FollowerStats, ok bool) {
	fs, ok := n.Node.LeaderStats()
	if !ok {
		return 0, nil, false
	}
	return n.ID(), followerStats(fs), true
}

func followerStats(in map[uint64]cluster.FollowerStats) map[uint64]v2http.FollowerStats {
	out := make(map[uint64]v2http.FollowerStats, len(in))
	for id, s := range in {
		out[id] = v2http.FollowerStats{
			Latency: v2http.LatencyStats{Current: s.Current, Average: s.Average, StdDev: s.StdDev, Minimum: s.Min, Maximum: s.Max},
			Success: s.Success, Fail: s.Fail,
		}
	}
	return out
}
