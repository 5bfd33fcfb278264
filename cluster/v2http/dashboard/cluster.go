package dashboard

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cairnkv/cairn/cluster"
)

// clusterJSON is /api/cluster: this member's raft view and every member.
type clusterJSON struct {
	Now             time.Time    `json:"now"`
	ID              string       `json:"id"`
	Name            string       `json:"name"`
	ClusterID       string       `json:"clusterId"`
	State           string       `json:"state"`
	LeaderID        string       `json:"leaderId"` // "" when there is no known leader
	LeaderName      string       `json:"leaderName"`
	Term            uint64       `json:"term"`
	CommitIndex     uint64       `json:"commitIndex"`
	AppliedIndex    uint64       `json:"appliedIndex"`
	StartTime       time.Time    `json:"startTime"`
	LeaderStartTime time.Time    `json:"leaderStartTime"`
	Fault           string       `json:"fault,omitempty"`
	DiskFull        string       `json:"diskFull,omitempty"`
	Probed          bool         `json:"probed"` // false: no MemberTLS, other members not asked
	Members         []memberJSON `json:"members"`
	Discovery       discoJSON    `json:"discovery"`
}

type discoJSON struct {
	Dir  string `json:"dir"`  // e.g. /skydns/internal/cairn
	Zone string `json:"zone"` // e.g. cairn.internal.
}

// memberJSON is one member and what its probe found.
type memberJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	Leader     bool     `json:"leader"`
	Self       bool     `json:"self"`
	// Health is "true" or "false" as the member's /health said, or
	// "unknown" when it was not asked or did not answer (Error says why).
	Health string `json:"health"`
	Error  string `json:"error,omitempty"`
	// CertNotAfter is the expiry of the serving certificate the member's
	// client port presented to the probe.
	CertNotAfter *time.Time `json:"certNotAfter,omitempty"`
	CertSubject  string     `json:"certSubject,omitempty"`
	LatencyMS    float64    `json:"latencyMs,omitempty"`
}

func hexID(id uint64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatUint(id, 16)
}

// serveCluster answers /api/cluster.
func (h *Handler) serveCluster(w http.ResponseWriter, r *http.Request) {
	st := h.cfg.Cluster.Status()
	out := clusterJSON{
		Now: time.Now().UTC(), ID: hexID(st.ID), Name: st.Name, ClusterID: hexID(st.ClusterID),
		State: st.State, LeaderID: hexID(st.LeaderID), Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		StartTime: st.StartTime.UTC(), LeaderStartTime: st.LeaderStartTime.UTC(),
		Fault: st.Fault, DiskFull: st.DiskFull,
		Discovery: discoJSON{Dir: h.cfg.Discovery.Dir(), Zone: h.cfg.Discovery.Zone()},
	}
	members := h.cfg.Cluster.Members()
	out.Members = make([]memberJSON, len(members))
	for i, m := range members {
		out.Members[i] = memberJSON{
			ID: hexID(m.ID), Name: m.Name, PeerURLs: nonNil(m.PeerURLs), ClientURLs: nonNil(m.ClientURLs),
			Leader: m.ID == st.LeaderID, Self: m.ID == st.ID, Health: "unknown",
		}
		if m.ID == st.LeaderID {
			out.LeaderName = m.Name
		}
	}
	if h.cfg.MemberTLS != nil {
		out.Probed = true
		h.probeAll(r.Context(), out.Members)
	} else {
		for i := range out.Members {
			if out.Members[i].Self {
				out.Members[i].Health = strconv.FormatBool(st.Fault == "" && st.LeaderID != 0)
			} else {
				out.Members[i].Error = "not probed: this member has no client TLS configuration for it"
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// probeAll probes every member concurrently, each bounded by ProbeTimeout.
func (h *Handler) probeAll(ctx context.Context, members []memberJSON) {
	conf := h.cfg.MemberTLS()
	var wg sync.WaitGroup
	for i := range members {
		if len(members[i].ClientURLs) == 0 {
			members[i].Error = "no client URL yet (the member has not started)"
			continue
		}
		wg.Add(1)
		go func(m *memberJSON) {
			defer wg.Done()
			h.probe(ctx, conf, m)
		}(&members[i])
	}
	wg.Wait()
}

// probe asks one member's /health over mTLS and records the serving
// certificate its client port presented.
func (h *Handler) probe(ctx context.Context, conf *tls.Config, m *memberJSON) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ProbeTimeout)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: conf.Clone(), DisableKeepAlives: true, ForceAttemptHTTP2: false}
	defer tr.CloseIdleConnections()
	url := m.ClientURLs[0] + "/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		m.Error = err.Error()
		return
	}
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		m.Error = fmt.Sprintf("GET %s: %v", url, err)
		h.cfg.Logger.Debug("dashboard: member probe failed", "member", m.Name, "err", err)
		return
	}
	defer resp.Body.Close()
	m.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		c := resp.TLS.PeerCertificates[0]
		na := c.NotAfter.UTC()
		m.CertNotAfter = &na
		m.CertSubject = c.Subject.CommonName
	}
	var body struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err := json.Unmarshal(b, &body); err != nil || (body.Health != "true" && body.Health != "false") {
		m.Error = fmt.Sprintf("GET %s: HTTP %d, unreadable body", url, resp.StatusCode)
		return
	}
	m.Health = body.Health
	if body.Health != "true" {
		m.Error = body.Reason
	}
}

var _ Cluster = (*cluster.Node)(nil)
