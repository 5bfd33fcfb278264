package cluster

import (
	"math"
	"testing"
)

func TestFollowerStatsObserve(t *testing.T) {
	var s FollowerStats
	for _, ms := range []float64{3, 1, 4, 2} {
		s.observe(ms)
	}
	want := FollowerStats{Current: 2, Average: 2.5, StdDev: math.Sqrt(1.25), Min: 1, Max: 4, Success: 4}
	if s.Current != want.Current || s.Average != want.Average || math.Abs(s.StdDev-want.StdDev) > 1e-9 ||
		s.Min != want.Min || s.Max != want.Max || s.Success != want.Success || s.Fail != 0 {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
}
