package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one run measured.
type Result struct {
	Workload  string   `json:"workload"`
	Label     string   `json:"label"`
	Endpoints []string `json:"endpoints,omitempty"`
	DNSAddr   string   `json:"dns_addr,omitempty"`
	Clients   int      `json:"clients"`
	Keys      int      `json:"keys,omitempty"`
	ValueSize int      `json:"value_size,omitempty"`
	// Requests is the number of requests that succeeded; for watch, the
	// number of events delivered (Writes times the watchers).
	Requests uint64 `json:"requests"`
	Writes   uint64 `json:"writes,omitempty"`
	Errors   uint64 `json:"errors"`
	// ErrorKinds counts the errors by kind ("status 500", "timeout", ...);
	// FirstError is the text of the first.
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	FirstError string            `json:"first_error,omitempty"`
	Seconds    float64           `json:"seconds"`
	// Rate is Requests per second.
	Rate    float64 `json:"rate"`
	Latency Latency `json:"latency_ms"`
	// Paced is the report of a paced refresh (Config.Interval).
	Paced *Paced `json:"paced,omitempty"`
	// CPU is what a closed-loop put, get or refresh run cost per
	// successful request (nil for the other workloads).
	CPU *CPUCost `json:"cpu_us_per_request,omitempty"`

	hist *Histogram
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Histogram is the run's latency histogram.
func (r *Result) Histogram() *Histogram { return r.hist }

// tally is one client's count of its requests, merged at the end.
type tally struct {
	hist  Histogram
	errs  map[string]uint64
	first string
}

func (t *tally) fail(err error) {
	if t.errs == nil {
		t.errs = map[string]uint64{}
	}
	t.errs[errorKind(err)]++
	if t.first == "" {
		t.first = err.Error()
	}
}

// errorKind groups errors for the report.
func errorKind(err error) string {
	var se *statusError
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.code)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.As(err, &ue):
		if ue.Timeout() {
			return "timeout"
		}
		return ue.Err.Error()
	}
	return err.Error()
}

// counters are the live totals a progress line shows.
type counters struct{ ok, errs atomic.Uint64 }

// run bounds a closed-loop run: by count when requests > 0, else by time.
type run struct {
	requests uint64
	issued   atomic.Uint64
	stop     atomic.Bool
}

// next is the sequence number of the next request, or false when the run
// is over.
func (r *run) next() (uint64, bool) {
	if r.stop.Load() {
		return 0, false
	}
	n := r.issued.Add(1) - 1
	if r.requests > 0 && n >= r.requests {
		return 0, false
	}
	return n, true
}

// start begins a run of cfg and ends it when cfg.Duration passes or ctx
// ends; the returned func releases its timer.
func startRun(ctx context.Context, cfg Config) (*run, func()) {
	r := &run{requests: uint64(cfg.Requests)}
	stopCtx := context.AfterFunc(ctx, func() { r.stop.Store(true) })
	var timer *time.Timer
	if cfg.Requests == 0 {
		timer = time.AfterFunc(cfg.Duration, func() { r.stop.Store(true) })
	}
	return r, func() {
		stopCtx()
		if timer != nil {
			timer.Stop()
		}
	}
}

// op is one request of a closed-loop client; n is the run's sequence
// number of the request.
type op func(ctx context.Context, n uint64) error

// closedLoop runs clients clients, each making one request at a time with
// its own op, until the run is over, and returns the merged tallies and
// the time it took.
func closedLoop(ctx context.Context, cfg Config, newOp func(client int) (op, func(), error), c *counters) (*tally, time.Duration, error) {
	ops := make([]op, cfg.Clients)
	for i := range ops {
		o, done, err := newOp(i)
		if err != nil {
			return nil, 0, err
		}
		defer done()
		ops[i] = o
	}
	r, release := startRun(ctx, cfg)
	defer release()
	tallies := make([]tally, cfg.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			for {
				n, ok := r.next()
				if !ok {
					return
				}
				t0 := time.Now()
				if err := ops[i](ctx, n); err != nil {
					if ctx.Err() != nil {
						return
					}
					t.fail(err)
					c.errs.Add(1)
					continue
				}
				t.hist.Record(time.Since(t0))
				c.ok.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := &tally{}
	for i := range tallies {
		all.merge(&tallies[i])
	}
	return all, elapsed, nil
}

func (t *tally) merge(o *tally) {
	t.hist.Merge(&o.hist)
	for k, v := range o.errs {
		if t.errs == nil {
			t.errs = map[string]uint64{}
		}
		t.errs[k] += v
	}
	if t.first == "" {
		t.first = o.first
	}
}

// result makes the report of a run.
func (t *tally) result(cfg Config, tg Target, elapsed time.Duration) *Result {
	r := &Result{Workload: cfg.Workload, Label: cfg.Label(), Clients: cfg.Clients,
		Requests: t.hist.Count(), ErrorKinds: t.errs, FirstError: t.first,
		Seconds: elapsed.Seconds(), hist: &t.hist}
	for _, n := range t.errs {
		r.Errors += n
	}
	if cfg.Workload == "dns" {
		r.DNSAddr = cfg.DNSAddr
	} else {
		r.Endpoints = tg.Endpoints
		r.Keys, r.ValueSize = cfg.Keys, cfg.ValueSize
	}
	switch cfg.Workload {
	case "get":
		r.ValueSize = 0
	case "watch":
		r.Keys, r.ValueSize = 0, 0
	}
	if elapsed > 0 {
		r.Rate = float64(r.Requests) / elapsed.Seconds()
	}
	h := &t.hist
	r.Latency = Latency{Mean: ms(h.Mean()), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
		P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max())}
	return r
}

// Run applies cfg's load to tg and returns what it measured. It writes the
// keys the workload needs first (unless cfg.SkipSetup), and a progress line
// a second to p when p is not nil. Failed requests are counted in the
// Result, not returned as an error; the error is for a run that could not
// start (bad settings, no member answering the setup).
func Run(ctx context.Context, tg Target, cfg Config, p *Progress) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	w, err := newWorkload(tg, cfg)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if !cfg.SkipSetup {
		if err := w.setup(ctx, p); err != nil {
			return nil, fmt.Errorf("bench: %s setup: %w", cfg.Workload, err)
		}
	}
	c := &counters{}
	stop := p.start(cfg.Label(), c)
	if kv, ok := w.(*kvLoad); ok && cfg.Interval > 0 {
		r, err := kv.runPaced(ctx, tg, c)
		stop()
		return r, err
	}
	kv, isKV := w.(*kvLoad)
	var before []memberSample
	var cpu0 time.Duration
	if isKV {
		before, cpu0 = kv.conn.sampleCost(ctx)
	}
	t, elapsed, err := w.run(ctx, c)
	stop()
	if err != nil {
		return nil, err
	}
	r := t.result(cfg, tg, elapsed)
	if isKV {
		after, cpu1 := kv.conn.sampleCost(ctx)
		r.CPU = cpuCost(before, after, cpu0, cpu1, r.Requests)
	}
	if cfg.Workload == "watch" {
		r.Writes = w.(*watchLoad).writes.Load()
	}
	return r, nil
}
