package v2http

import (
	"encoding/json"
	"net/http"
	"time"
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

// leaderStats is etcd 2.x's LeaderStats. Per-follower latencies and counts
// need the cluster to expose them; until then followers is empty.
type leaderStats struct {
	Leader    string              `json:"leader"`
	Followers map[string]struct{} `json:"followers"`
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
// that is not the leader, with or without a known leader, as etcd 2.x.
func (h *Handler) serveStatsLeader(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet) {
		return
	}
	st := h.cluster.Status()
	if st.ID == 0 || st.LeaderID != st.ID {
		writeHTTPError(w, r, http.StatusForbidden, "not current leader")
		return
	}
	b, _ := json.Marshal(leaderStats{Leader: hexID(st.ID), Followers: map[string]struct{}{}})
	writeBody(w, r, http.StatusOK, "application/json", b)
}
