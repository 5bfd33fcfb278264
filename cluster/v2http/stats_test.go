package v2http

import (
	"math"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// statserCluster adds LeaderStatser to the fake.
type statserCluster struct {
	*fakeCluster
	leader    uint64
	followers map[uint64]FollowerStats
	ok        bool
}

var _ LeaderStatser = (*statserCluster)(nil)

func (s *statserCluster) LeaderStats() (uint64, map[uint64]FollowerStats, bool) {
	return s.leader, s.followers, s.ok
}

func TestStatsLeaderFollowers(t *testing.T) {
	var f2, f10 FollowerStats
	f2.Latency = LatencyStats{Current: 1.5, Average: 0.25, StdDev: 0.125, Minimum: 0.1, Maximum: 3}
	f2.Success, f2.Fail = 120, 2
	// etcd's initial minimum (1<<63) before any success, and a NaN
	// deviation, which JSON cannot carry.
	f10.Latency = LatencyStats{Minimum: 1 << 63, StdDev: math.NaN(), Maximum: math.Inf(1)}
	f10.Fail = 7

	tests := []struct {
		name      string
		leader    uint64
		followers map[uint64]FollowerStats
		ok        bool
		state     string // the fake's Status, which LeaderStats overrides
		code      int
		body      string
	}{
		{"two followers", 1, map[uint64]FollowerStats{2: f2, 0x10: f10}, true, "StateLeader", 200,
			`{"leader":"1","followers":{` +
				`"10":{"latency":{"current":0,"average":0,"standardDeviation":0,"minimum":9223372036854776000,"maximum":0},"counts":{"fail":7,"success":0}},` +
				`"2":{"latency":{"current":1.5,"average":0.25,"standardDeviation":0.125,"minimum":0.1,"maximum":3},"counts":{"fail":2,"success":120}}}}`},
		{"alone", 1, nil, true, "StateLeader", 200, `{"leader":"1","followers":{}}`},
		{"stats say leader", 1, map[uint64]FollowerStats{}, true, "StateFollower", 200, `{"leader":"1","followers":{}}`},
		{"not leader", 0, nil, false, "StateLeader", 403, `{"message":"not current leader"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &statserCluster{fakeCluster: newFakeCluster(store.Config{}), leader: tt.leader, followers: tt.followers, ok: tt.ok}
			sc.set(func(f *fakeCluster) {
				f.status.State = tt.state
				if tt.state != "StateLeader" {
					f.status.LeaderID = 2
				}
			})
			h, err := New(Config{Cluster: sc})
			if err != nil {
				t.Fatal(err)
			}
			w := do(h, "GET", "/v2/stats/leader", "")
			checkResponse(t, w, tt.code, tt.body)
			if w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
}
