package cluster

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"
)

// FollowerStats are the leader's measurements of one follower, as etcd's
// /v2/stats/leader shows them: round-trip latencies of the peer channel in
// milliseconds (StdDev is the standard deviation), and counts of answered
// and failed probes. It is the one type of these numbers: v2http renders it
// as etcd's JSON (a value that is not finite as 0).
type FollowerStats struct {
	Current, Average, StdDev, Min, Max float64
	Success, Fail                      uint64
	n                                  float64
	m2                                 float64 // Welford's running sum of squares
}

func (s *FollowerStats) observe(ms float64) {
	s.Success++
	s.Current = ms
	s.n++
	d := ms - s.Average
	s.Average += d / s.n
	s.m2 += d * (ms - s.Average)
	s.StdDev = math.Sqrt(s.m2 / s.n)
	if s.n == 1 || ms < s.Min {
		s.Min = ms
	}
	s.Max = max(s.Max, ms)
}

// leaderStats holds the probes of the current term's leadership.
type leaderStats struct {
	mu        sync.Mutex
	term      uint64
	followers map[uint64]*FollowerStats
}

// LeaderStats returns this leader's view of its followers, one entry per
// other member; ok is false on a node that is not the leader. It
// implements v2http.LeaderStatser.
func (n *Node) LeaderStats() (map[uint64]FollowerStats, bool) {
	if !n.isLeader() {
		return nil, false
	}
	n.lstats.mu.Lock()
	defer n.lstats.mu.Unlock()
	out := make(map[uint64]FollowerStats)
	for _, m := range n.Members() {
		if m.ID == n.id {
			continue
		}
		var s FollowerStats
		if n.lstats.term == n.raft.CurrentTerm() && n.lstats.followers[m.ID] != nil {
			s = *n.lstats.followers[m.ID]
		}
		out[m.ID] = s
	}
	return out, true
}

// probeFollowers measures, as leader, the round trip to every follower over
// the peer channel, once per interval.
func (n *Node) probeFollowers() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		if !n.isLeader() {
			continue
		}
		term := n.raft.CurrentTerm()
		servers, err := n.servers()
		if err != nil {
			continue
		}
		var wg sync.WaitGroup
		for _, s := range servers {
			id, err := strconv.ParseUint(string(s.ID), 16, 64)
			if err != nil || id == n.id {
				continue
			}
			wg.Add(1)
			go func(id uint64, addr string) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				start := time.Now()
				ans, err := n.net.Call(ctx, addr, []byte{opPing, 0})
				cancel()
				if err == nil {
					_, err = decodeAnswer(ans)
				}
				ms := float64(time.Since(start).Microseconds()) / 1000
				n.lstats.mu.Lock()
				defer n.lstats.mu.Unlock()
				if n.lstats.term != term {
					n.lstats.term, n.lstats.followers = term, make(map[uint64]*FollowerStats)
				}
				fs := n.lstats.followers[id]
				if fs == nil {
					fs = new(FollowerStats)
					n.lstats.followers[id] = fs
				}
				if err != nil {
					fs.Fail++
					return
				}
				fs.observe(ms)
			}(id, string(s.Address))
		}
		wg.Wait()
	}
}
