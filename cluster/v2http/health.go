package v2http

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// serveVersion is etcd 2.1+'s /version: {"etcdserver":"2.3.8","etcdcluster":"2.3.0"}
// without a trailing newline, GET only. Cairn's own version goes in the
// X-Cairn-Version header so that the JSON stays what etcd clients parse.
func (h *Handler) serveVersion(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet) {
		return
	}
	b, _ := json.Marshal(struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}{h.cfg.Version, clusterVersion(h.cfg.Version)})
	w.Header().Set("X-Cairn-Version", h.cfg.CairnVersion)
	writeBody(w, r, http.StatusOK, "application/json", b)
}

// clusterVersion is major.minor.0 of v, or etcd's "not_decided" when v does
// not start with two numeric components.
func clusterVersion(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 || !isDigits(parts[0]) || !isDigits(parts[1]) {
		return "not_decided"
	}
	return parts[0] + "." + parts[1] + ".0"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// serveHealth answers 200 {"health":"true"} when the node knows a leader and
// a linearizable read succeeds within healthTimeout, else 503
// {"health":"false"}. This is etcd 3.4's check (a read through raft) and
// body shape, with Content-Type application/json on both answers (3.4 sends
// the 503 through http.Error as text/plain with a newline). A member that
// stopped on a corrupt log, or whose data dir is full, answers 503 with a
// "reason" (etcd 3.5's field) saying so.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet) {
		return
	}
	st := h.cluster.Status()
	if reason := cmp.Or(st.Fault, st.DiskFull, st.CatchingUp); reason != "" {
		// A member that found its log corrupt, or whose disk is full, says
		// why (etcd 3.5's "reason" field), whatever raft still reports.
		b, _ := json.Marshal(struct {
			Health string `json:"health"`
			Reason string `json:"reason"`
		}{"false", reason})
		writeBody(w, r, http.StatusServiceUnavailable, "application/json", b)
		return
	}
	healthy := st.LeaderID != 0
	if healthy {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		err := h.cluster.ReadBarrier(ctx)
		cancel()
		if err != nil {
			h.log.Debug("health: read barrier failed", "err", err)
			healthy = false
		}
	}
	if !healthy {
		writeBody(w, r, http.StatusServiceUnavailable, "application/json", []byte(`{"health":"false"}`))
		return
	}
	writeBody(w, r, http.StatusOK, "application/json", []byte(`{"health":"true"}`))
}
