package main

import (
	"testing"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http"
)

func TestFollowerStats(t *testing.T) {
	got := followerStats(map[uint64]cluster.FollowerStats{
		2: {Current: 1, Average: 2, StdDev: 3, Min: 4, Max: 5, Success: 6, Fail: 7},
		3: {},
	})
	want := map[uint64]v2http.FollowerStats{
		2: {Latency: v2http.LatencyStats{Current: 1, Average: 2, StdDev: 3, Minimum: 4, Maximum: 5}, Success: 6, Fail: 7},
		3: {},
	}
	if len(got) != len(want) || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("%+v, want %+v", got, want)
	}
}
