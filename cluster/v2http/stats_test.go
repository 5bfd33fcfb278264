package v2http

import (
	"math"
	"testing"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/store"
)

// statserCluster adds LeaderStatser to the fake.
type statserCluster struct {
	*fakeCluster
	followers map[uint64]cluster.FollowerStats
	ok        bool
}

var _ LeaderStatser = (*statserCluster)(nil)

func (s *statserCluster) LeaderStats() (map[uint64]cluster.FollowerStats, bool) {
	return s.followers, s.ok
}

func TestStatsLeaderFollowers(t *testing.T) {
	f2 := cluster.FollowerStats{Current: 1.5, Average: 0.25, StdDev: 0.125, Min: 0.1, Max: 3, Success: 120, Fail: 2}
	// etcd's initial minimum (1<<63) before any success, and a NaN
	// deviation, which JSON cannot carry.
	f10 := cluster.FollowerStats{Min: 1 << 63, StdDev: math.NaN(), Max: math.Inf(1), Fail: 7}

	tests := []struct {
		name      string
		followers map[uint64]cluster.FollowerStats
		ok        bool
		state     string // the fake's Status, which LeaderStats overrides
		code      int
		body      string
	}{
		{"two followers", map[uint64]cluster.FollowerStats{2: f2, 0x10: f10}, true, "StateLeader", 200,
			`{"leader":"1","followers":{` +
				`"10":{"latency":{"current":0,"average":0,"standardDeviation":0,"minimum":9223372036854776000,"maximum":0},"counts":{"fail":7,"success":0}},` +
				`"2":{"latency":{"current":1.5,"average":0.25,"standardDeviation":0.125,"minimum":0.1,"maximum":3},"counts":{"fail":2,"success":120}}}}`},
		{"alone", nil, true, "StateLeader", 200, `{"leader":"1","followers":{}}`},
		{"stats say leader", map[uint64]cluster.FollowerStats{}, true, "StateFollower", 200, `{"leader":"1","followers":{}}`},
		{"not leader", nil, false, "StateLeader", 403, `{"message":"not current leader"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &statserCluster{fakeCluster: newFakeCluster(store.Config{}), followers: tt.followers, ok: tt.ok}
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
