package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// What a paced run reads from each member before and after: its process
// collectors on /metrics (Cairn and etcd both register them) and its raft
// index (X-Raft-Index of a local read, which both send). A member that
// exposes something not is reported with what is missing, not failed.

// MemberUsage is one member's cost over a run.
type MemberUsage struct {
	Endpoint string `json:"endpoint"`
	// CPUSeconds is the growth of process_cpu_seconds_total; CPUPercent
	// is that over the run's seconds, in percent of one core.
	CPUSeconds *float64 `json:"cpu_seconds,omitempty"`
	CPUPercent *float64 `json:"cpu_percent_of_a_core,omitempty"`
	// RSSStart and RSSEnd are process_resident_memory_bytes before and
	// after.
	RSSStart *float64 `json:"rss_bytes_start,omitempty"`
	RSSEnd   *float64 `json:"rss_bytes_end,omitempty"`
	// RaftIndexStart and RaftIndexEnd are the member's X-Raft-Index.
	RaftIndexStart *uint64 `json:"raft_index_start,omitempty"`
	RaftIndexEnd   *uint64 `json:"raft_index_end,omitempty"`
	// NotExposed names what the member did not answer (e.g. "process
	// collectors on /metrics"), with why.
	NotExposed []string `json:"not_exposed,omitempty"`
}

// memberSample is what one read of a member found; nil fields were not
// there.
type memberSample struct {
	cpu, rss *float64
	raft     *uint64
	missing  []string
}

// Metric names read from /metrics.
const (
	metricCPU = "process_cpu_seconds_total"
	metricRSS = "process_resident_memory_bytes"
)

// parseMetrics returns the values of the unlabelled samples named in
// names found in a Prometheus text exposition.
func parseMetrics(text []byte, names ...string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				v, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					out[n] = f
				}
			}
		}
	}
	return out
}

// sample reads member ep once.
func (c *conn) sample(ctx context.Context, ep string) memberSample {
	var s memberSample
	var body bytes.Buffer
	if _, err := c.do(ctx, c.hc, http.MethodGet, ep+"/metrics", nil, &body, http.StatusOK); err != nil {
		s.missing = append(s.missing, fmt.Sprintf("/metrics (%v)", err))
	} else {
		m := parseMetrics(body.Bytes(), metricCPU, metricRSS)
		if v, ok := m[metricCPU]; ok {
			s.cpu = &v
		} else {
			s.missing = append(s.missing, metricCPU+" on /metrics")
		}
		if v, ok := m[metricRSS]; ok {
			s.rss = &v
		} else {
			s.missing = append(s.missing, metricRSS+" on /metrics")
		}
	}
	// A local read of the root: etcd ignores stale=true (its reads are
	// local), Cairn reads its own replica. HEAD: no listing.
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, ep+"/v2/keys/?stale=true", nil)
	if err == nil {
		var resp *http.Response
		if resp, err = c.hc.Do(req); err == nil {
			resp.Body.Close()
			if v, perr := strconv.ParseUint(resp.Header.Get("X-Raft-Index"), 10, 64); perr == nil {
				s.raft = &v
			} else {
				err = fmt.Errorf("status %d, no X-Raft-Index header", resp.StatusCode)
			}
		}
	}
	if err != nil {
		s.missing = append(s.missing, fmt.Sprintf("raft index (%v)", err))
	}
	return s
}

// sampleAll reads every member at once.
func (c *conn) sampleAll(ctx context.Context) []memberSample {
	out := make([]memberSample, len(c.eps))
	var wg sync.WaitGroup
	for i, ep := range c.eps {
		wg.Go(func() { out[i] = c.sample(ctx, ep) })
	}
	wg.Wait()
	return out
}

// usage is what the members used between the samples before and after,
// over elapsed; and the raft entries the whole cluster appended (the
// growth of the highest index any member reported), or nil when no member
// reported one at both ends.
func usage(eps []string, before, after []memberSample, elapsed time.Duration) ([]MemberUsage, *uint64) {
	out := make([]MemberUsage, len(eps))
	var hiBefore, hiAfter *uint64
	for i, ep := range eps {
		b, a := before[i], after[i]
		u := MemberUsage{Endpoint: ep, RSSStart: b.rss, RSSEnd: a.rss, RaftIndexStart: b.raft, RaftIndexEnd: a.raft}
		if b.cpu != nil && a.cpu != nil {
			cpu := *a.cpu - *b.cpu
			u.CPUSeconds = &cpu
			if elapsed > 0 {
				pct := 100 * cpu / elapsed.Seconds()
				u.CPUPercent = &pct
			}
		}
		seen := map[string]bool{}
		for _, m := range append(append([]string(nil), b.missing...), a.missing...) {
			if !seen[m] {
				seen[m] = true
				u.NotExposed = append(u.NotExposed, m)
			}
		}
		if b.raft != nil && a.raft != nil {
			if hiBefore == nil || *b.raft > *hiBefore {
				hiBefore = b.raft
			}
			if hiAfter == nil || *a.raft > *hiAfter {
				hiAfter = a.raft
			}
		}
		out[i] = u
	}
	if hiBefore == nil || *hiAfter < *hiBefore {
		return out, nil
	}
	grew := *hiAfter - *hiBefore
	return out, &grew
}

// CPUCost is the CPU time of a run per successful request, in
// microseconds: Members is the growth of every member's
// process_cpu_seconds_total summed (nil unless all of them exposed it),
// Generator this process's own (nil where getrusage is not measured). With
// the generator on the members' machine, a rate compares servers only as
// far as the generator leaves them the cores; Members compares their cost.
type CPUCost struct {
	Members   *float64 `json:"members,omitempty"`
	Generator *float64 `json:"generator,omitempty"`
}

// sampleCost samples every member, within 10 s, and this process's CPU
// time (-1 when not measured).
func (c *conn) sampleCost(ctx context.Context) ([]memberSample, time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := c.sampleAll(sctx)
	cpu, ok := selfCPU()
	if !ok {
		cpu = -1
	}
	return s, cpu
}

// cpuCost is the cost per request between two sampleCost calls; nil when
// no request succeeded.
func cpuCost(before, after []memberSample, self0, self1 time.Duration, requests uint64) *CPUCost {
	if requests == 0 {
		return nil
	}
	per := func(seconds float64) *float64 {
		v := seconds * 1e6 / float64(requests)
		return &v
	}
	out := &CPUCost{}
	total, all := 0.0, true
	for i := range before {
		if before[i].cpu == nil || after[i].cpu == nil {
			all = false
			break
		}
		total += *after[i].cpu - *before[i].cpu
	}
	if all && len(before) > 0 {
		out.Members = per(total)
	}
	if self0 >= 0 && self1 >= 0 {
		out.Generator = per((self1 - self0).Seconds())
	}
	return out
}
