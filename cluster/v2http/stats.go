package v2http

import (
	"encoding/json"
	"math"
	"net/http"
	"time"

	"github.com/cairnkv/cairn/cluster"
)

// selfStats is etcd 2.x's ServerStats, in its field order. The rates are
// omitted while the cluster does not measure them (omitempty, as etcd does
// on a node that neither receives nor sends appends).
type selfStats struct {
	Name       string    `json:"name"`
	ID         string    `json:"id"`
	State      string    `json:"state"`
	StartTime  time.Time `json:"startTime"`
	LeaderInfo struct {
		Name      string    `json:"leader"`
		Uptime    string    `json:"uptime"`
		StartTime time.Time `json:"startTime"`
	} `json:"leaderInfo"`
	RecvAppendRequestCnt uint64  `json:"recvAppendRequestCnt"`
	RecvingPkgRate       float64 `json:"recvPkgRate,omitempty"`
	RecvingBandwidthRate float64 `json:"recvBandwidthRate,omitempty"`
	SendAppendRequestCnt uint64  `json:"sendAppendRequestCnt"`
	SendingPkgRate       float64 `json:"sendPkgRate,omitempty"`
	SendingBandwidthRate float64 `json:"sendBandwidthRate,omitempty"`
}

// leaderStats is etcd 2.x's LeaderStats: followers keyed by hex member ID
// (encoding/json sorts the keys). Per-follower latencies and counts come
// from a Cluster that implements LeaderStatser; without it followers is
// empty.
type leaderStats struct {
	Leader    string                       `json:"leader"`
	Followers map[string]followerStatsJSON `json:"followers"`
}

// followerStatsJSON is etcd's FollowerStats in its field order.
type followerStatsJSON struct {
	Latency struct {
		Current           float64 `json:"current"`
		Average           float64 `json:"average"`
		StandardDeviation float64 `json:"standardDeviation"`
		Minimum           float64 `json:"minimum"`
		Maximum           float64 `json:"maximum"`
	} `json:"latency"`
	Counts struct {
		Fail    uint64 `json:"fail"`
		Success uint64 `json:"success"`
	} `json:"counts"`
}

func newFollowerStatsJSON(f cluster.FollowerStats) followerStatsJSON {
	var j followerStatsJSON
	j.Latency.Current = finite(f.Current)
	j.Latency.Average = finite(f.Average)
	j.Latency.StandardDeviation = finite(f.StdDev)
	j.Latency.Minimum = finite(f.Min)
	j.Latency.Maximum = finite(f.Max)
	j.Counts.Fail = f.Fail
	j.Counts.Success = f.Success
	return j
}

// finite maps NaN and ±Inf, which json.Marshal refuses, to 0. (etcd's
// standard deviation, a square root of a difference, can be NaN; etcd then
// fails to encode its stats.)
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// The stats bodies are json.Marshal output: no trailing newline, as etcd.

func (h *Handler) serveStatsSelf(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet) {
		return
	}
	st := h.cluster.Status()
	var s selfStats
	s.Name = st.Name
	s.ID = hexID(st.ID)
	s.State = st.State
	s.StartTime = st.StartTime
	if st.LeaderID != 0 {
		s.LeaderInfo.Name = hexID(st.LeaderID)
	}
	s.LeaderInfo.StartTime = st.LeaderStartTime
	s.LeaderInfo.Uptime = "0s"
	if !st.LeaderStartTime.IsZero() {
		s.LeaderInfo.Uptime = h.cfg.Now().Sub(st.LeaderStartTime).String()
	}
	s.RecvAppendRequestCnt = st.RecvAppendRequestCnt
	s.SendAppendRequestCnt = st.SendAppendRequestCnt
	b, _ := json.Marshal(s) // plain fields: cannot fail
	writeBody(w, r, http.StatusOK, "application/json", b)
}

func (h *Handler) serveStatsStore(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet) {
		return
	}
	writeBody(w, r, http.StatusOK, "application/json", h.cluster.Store().Stats().JSON())
}

// serveStatsLeader answers 403 {"message":"not current leader"} on any node
// that is not the leader, with or without a known leader, as etcd 2.x. On
// the leader it renders the followers of a LeaderStatser; whether this node
// is the leader is then the LeaderStatser's word, so that the answer is
// consistent.
func (h *Handler) serveStatsLeader(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet) {
		return
	}
	ls := leaderStats{Followers: map[string]followerStatsJSON{}}
	if lser, ok := h.cluster.(LeaderStatser); ok {
		followers, ok := lser.LeaderStats()
		if !ok {
			writeHTTPError(w, r, http.StatusForbidden, "not current leader")
			return
		}
		ls.Leader = hexID(h.cluster.Status().ID)
		for id, f := range followers {
			ls.Followers[hexID(id)] = newFollowerStatsJSON(f)
		}
	} else {
		st := h.cluster.Status()
		if st.ID == 0 || st.LeaderID != st.ID {
			writeHTTPError(w, r, http.StatusForbidden, "not current leader")
			return
		}
		ls.Leader = hexID(st.ID)
	}
	b, _ := json.Marshal(ls) // finite numbers and strings: cannot fail
	writeBody(w, r, http.StatusOK, "application/json", b)
}
