package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// The paced refresh (Config.Interval): Keys registrations, each
// heartbeating once per Interval, spread over the members; what the
// members used meanwhile; and the raft entries the heartbeats cost.

// pacedSetupSlack is added to the TTL the setup writes the keys with, so
// that a key written early in a long setup (100,000 keys take tens of
// seconds) is still there at its first heartbeat, which sets the TTL
// being measured.
const pacedSetupSlack = 5 * time.Minute

// defaultPacedClients bounds the heartbeats in flight of a paced run when
// Config.Clients is not set: 10,000/s at 25 ms each is 250.
const defaultPacedClients = 256

// Paced is the report of a paced refresh run.
type Paced struct {
	IntervalSeconds float64 `json:"interval_s"`
	TTLSeconds      float64 `json:"ttl_s"`
	// TargetRate is Keys over Interval, heartbeats per second; the
	// Result's Rate is the heartbeats answered 200 per second, and
	// AnsweredRate those answered at all (200, or error 100 for a key
	// that had expired), the cluster's pace.
	TargetRate   float64 `json:"target_rate"`
	AnsweredRate float64 `json:"answered_rate"`
	// Due is the heartbeats the schedule had due in the run, Sent those
	// started (a run behind schedule ends at its duration all the same),
	// Late those started more than LateAfter after their due time.
	// LateWaiting is the late ones that found all Clients in flight,
	// waiting on answers, at their turn: the answers were too slow for
	// the rate with that many in flight (the cluster's pace, or too few
	// --clients). The other late ones found a client free: the generator
	// itself was behind (its CPU).
	Due         uint64  `json:"due"`
	Sent        uint64  `json:"sent"`
	Late        uint64  `json:"late"`
	LateWaiting uint64  `json:"late_waiting_for_answers"`
	LateAfterMS float64 `json:"late_after_ms"`
	LagP99MS    float64 `json:"lag_p99_ms"`
	LagMaxMS    float64 `json:"lag_max_ms"`
	// Lost is the heartbeats answered error 100 (Key not found): the
	// registration had expired. LostOnTime is those whose key had a
	// heartbeat answered less than a TTL before (or none yet in the run,
	// the setup's TTL being longer): registrations the cluster let
	// expire although their heartbeats came in time. The others followed
	// a gap longer than the TTL, made by a run behind schedule.
	// Reregistered is the lost keys written again (the population stays
	// whole).
	Lost         uint64 `json:"lost"`
	LostOnTime   uint64 `json:"lost_on_time"`
	Reregistered uint64 `json:"reregistered"`
	// GeneratorCPUPercent is this process's CPU over the run, in percent
	// of one core: on one machine with the members, the generator
	// competes with them.
	GeneratorCPUPercent *float64 `json:"generator_cpu_percent_of_a_core,omitempty"`
	// RaftEntries is the growth of the cluster's raft index over the run
	// and EntriesPerHeartbeat that, less the re-registrations, over the
	// heartbeats answered (200 or 100); nil when no member exposes its
	// raft index.
	RaftEntries         *uint64       `json:"raft_entries,omitempty"`
	EntriesPerHeartbeat *float64      `json:"raft_entries_per_heartbeat,omitempty"`
	Members             []MemberUsage `json:"members"`
}

// heartbeat refreshes key through member; a key found expired is written
// again (so that the population stays whole) and reported as errExpired.
func (l *kvLoad) heartbeat(ctx context.Context, key, member int) error {
	ep := l.conn.eps[member]
	_, err := l.conn.do(ctx, l.conn.hc, http.MethodPut, ep+l.paths[key]+l.query, nil, nil, http.StatusOK)
	var se *statusError
	if err == nil || !errors.As(err, &se) || se.code != http.StatusNotFound || !strings.Contains(se.body, `"errorCode":100`) {
		return err
	}
	if _, err := l.conn.do(ctx, l.conn.hc, http.MethodPut, ep+l.paths[key], l.reg, nil, http.StatusOK, http.StatusCreated); err != nil {
		return fmt.Errorf("%w; registering it again: %v", errExpired, err)
	}
	return errExpired
}

// runPaced is the paced refresh: the members are sampled before and
// after the heartbeats.
func (l *kvLoad) runPaced(ctx context.Context, tg Target, c *counters) (*Result, error) {
	cfg := l.cfg
	s := schedule{keys: uint64(len(l.paths)), members: uint64(len(l.conn.eps)), interval: cfg.Interval, ttl: cfg.TTL}
	total := uint64(cfg.Requests)
	if total == 0 {
		total = s.within(cfg.Duration)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	before := l.conn.sampleAll(sctx)
	cancel()
	cutoff := cfg.Duration
	if cfg.Requests > 0 {
		cutoff = 0
	}
	cpu0, cpuOK := selfCPU()
	pt, elapsed := paced(ctx, s, total, cutoff, cfg.Clients, l.heartbeat, c)
	cpu1, _ := selfCPU()
	sctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	after := l.conn.sampleAll(sctx)
	cancel()
	r := pt.tally.result(cfg, tg, elapsed)
	pr := &Paced{IntervalSeconds: cfg.Interval.Seconds(), TTLSeconds: cfg.TTL.Seconds(), TargetRate: s.rate(),
		Due: pt.due, Sent: pt.sent, Late: pt.late, LateWaiting: pt.lateWaiting, LateAfterMS: ms(LateAfter),
		LagP99MS: ms(pt.lag.Quantile(0.99)), LagMaxMS: ms(pt.lag.Max()),
		Lost: pt.lost, LostOnTime: pt.lostOnTime, Reregistered: pt.reregistered}
	pr.Members, pr.RaftEntries = usage(l.conn.eps, before, after, elapsed)
	if cpuOK && elapsed > 0 {
		pct := 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
		pr.GeneratorCPUPercent = &pct
	}
	if elapsed > 0 {
		pr.AnsweredRate = float64(r.Requests+pt.lost) / elapsed.Seconds()
	}
	if answered := r.Requests + pt.lost; pr.RaftEntries != nil && answered > 0 {
		e := float64(max(*pr.RaftEntries, pt.reregistered)-pt.reregistered) / float64(answered)
		pr.EntriesPerHeartbeat = &e
	}
	r.Paced = pr
	return r, nil
}

// writePaced writes the paced part of a result under the table.
func writePaced(w io.Writer, r *Result) error {
	p := r.Paced
	fmt.Fprintf(w, "paced refresh: %d keys heartbeating every %gs (ttl %gs) over %d member(s): target %.0f/s; answered %.0f/s, %.0f/s of them refreshing a live key (%d in %.1fs)\n",
		r.Keys, p.IntervalSeconds, p.TTLSeconds, len(p.Members), p.TargetRate, p.AnsweredRate, r.Rate, r.Requests, r.Seconds)
	fmt.Fprintf(w, "  due %d, sent %d; late %d (started over %.0f ms after due; lag p99 %.1f ms, max %.1f ms)\n",
		p.Due, p.Sent, p.Late, p.LateAfterMS, p.LagP99MS, p.LagMaxMS)
	if p.Late > 0 || p.Sent < p.Due {
		fmt.Fprintf(w, "  behind schedule: %d late heartbeats found all %d clients waiting on answers (p99 %.0f ms): the cluster's pace with %d in flight (more --clients tells whether it goes faster); %d found a client free: the generator itself was behind (it did not get the CPU in time; on one machine it shares it with the members and whatever else runs), a limit of this machine, not of the cluster\n",
			p.LateWaiting, r.Clients, r.Latency.P99, r.Clients, p.Late-p.LateWaiting)
	}
	fmt.Fprintf(w, "  registrations lost (heartbeat answered error 100, the key had expired): %d; %d of them with every heartbeat in time (the cluster's), %d after a gap over the ttl (the run behind schedule); %d written again\n",
		p.Lost, p.LostOnTime, p.Lost-p.LostOnTime, p.Reregistered)
	if p.RaftEntries != nil && p.EntriesPerHeartbeat != nil {
		fmt.Fprintf(w, "  raft entries: %d over %d heartbeats answered and %d re-registrations: %.3f per heartbeat\n", *p.RaftEntries, r.Requests+p.Lost, p.Reregistered, *p.EntriesPerHeartbeat)
	} else {
		fmt.Fprintln(w, "  raft entries: not exposed (no X-Raft-Index at both ends)")
	}
	if p.GeneratorCPUPercent != nil {
		fmt.Fprintf(w, "  the generator (this process) used %.0f%% of a core\n", *p.GeneratorCPUPercent)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "member\tcpu s\t% of a core\trss start MiB\trss end MiB\traft index start\traft index end\t")
	for _, m := range p.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.Endpoint, fnum(m.CPUSeconds, 1, 1), fnum(m.CPUPercent, 1, 0),
			fnum(m.RSSStart, 1<<20, 1), fnum(m.RSSEnd, 1<<20, 1), unum(m.RaftIndexStart), unum(m.RaftIndexEnd))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range p.Members {
		if len(m.NotExposed) > 0 {
			fmt.Fprintf(w, "  %s did not expose: %s\n", m.Endpoint, strings.Join(m.NotExposed, "; "))
		}
	}
	return nil
}

// fnum is *v divided by unit with prec decimals, or "n/a".
func fnum(v *float64, unit float64, prec int) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", prec, *v/unit)
}

func unum(v *uint64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprint(*v)
}
