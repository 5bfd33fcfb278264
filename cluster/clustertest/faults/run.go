//go:build linux

package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/v2client"
)

// Config tunes Run. The zero value is the short run of CI.
type Config struct {
	// Duration is how long faults are injected (default 50 s); the run
	// goes on past it until MinRounds of each kind were made.
	Duration time.Duration
	// MinRounds is the least number of kills, pauses and partitions
	// (default 3 each).
	MinRounds int
	// Workers is the number of concurrent clients (default 2 per member),
	// each aimed at one member.
	Workers int
	// Keys is the number of keys (default 4).
	Keys int
	// FaultMin and FaultMax bound how long one fault lasts (default 1.5 s
	// and 3 s); Quiet is the pause between a recovery and the next fault
	// (default 500 ms).
	FaultMin, FaultMax, Quiet time.Duration
	// RecoverTimeout bounds the cluster's recovery after a fault and the
	// convergence at the end (default 60 s).
	RecoverTimeout time.Duration
	// CheckTimeout bounds porcupine (default 5 min).
	CheckTimeout time.Duration
	// OutDir receives the visualization of an illegal history (default
	// $CAIRN_FAULTS_OUT, else a new directory under os.TempDir that is
	// kept).
	OutDir string
	// StaleReads makes every read stale=true, a read path that is not
	// linearizable: for showing that the check catches one.
	StaleReads bool
	// Seed seeds the workload and the nemesis (default: the clock).
	Seed uint64
	// Logf receives a line per fault (default: none).
	Logf func(format string, args ...any)
}

func (c *Config) defaults(members int) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Duration, 50*time.Second)
	def(&c.FaultMin, 1500*time.Millisecond)
	def(&c.FaultMax, 3*time.Second)
	def(&c.Quiet, 500*time.Millisecond)
	def(&c.RecoverTimeout, 60*time.Second)
	def(&c.CheckTimeout, 5*time.Minute)
	c.FaultMax = max(c.FaultMax, c.FaultMin)
	if c.MinRounds == 0 {
		c.MinRounds = 3
	}
	if c.Workers == 0 {
		c.Workers = 2 * members
	}
	if c.Keys == 0 {
		c.Keys = 4
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Report is what a run did and found.
type Report struct {
	Seed    uint64
	Stats   Stats
	Verdict Verdict
	// Final is each key's value read linearizably at the end.
	Final map[string]Output
	// Lost lists acknowledged writes missing at the end (LostWrites);
	// Conflicts values seen with two indexes (IndexConflicts).
	Lost, Conflicts []string
}

// Failed reports whether the run found a fault of Cairn's.
func (r *Report) Failed() bool {
	return r.Verdict.Result == porcupine.Illegal || len(r.Lost) > 0 || len(r.Conflicts) > 0
}

// Summary is the report in a few lines.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %s\n", r.Seed, r.Stats)
	fmt.Fprintf(&b, "linearizability: %s (porcupine took %v)", r.Verdict.Result, r.Verdict.Took.Round(time.Millisecond))
	if len(r.Verdict.IllegalKeys) > 0 {
		fmt.Fprintf(&b, " on %s", strings.Join(r.Verdict.IllegalKeys, ", "))
	}
	if r.Verdict.Visualization != "" {
		fmt.Fprintf(&b, "; visualization: %s", r.Verdict.Visualization)
	}
	fmt.Fprintf(&b, "\nacknowledged writes lost: %d; values with two indexes: %d", len(r.Lost), len(r.Conflicts))
	for _, s := range append(append([]string(nil), r.Lost...), r.Conflicts...) {
		b.WriteString("\n  " + s)
	}
	return b.String()
}

// Run runs the workload on p, which must be formed and healthy, while
// injecting faults; then heals everything, waits for the members to agree,
// reads every key a last time and checks the history. Its error is a
// failure of the harness or a cluster that did not recover; what the
// history shows is in the Report.
func Run(p *clustertest.Procs, cfg Config) (*Report, error) {
	cfg.defaults(p.Len())
	h := NewHistory()
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("/faults/k%d", i)
	}
	budget := p.RequestTimeout() + 2*time.Second
	var workers []*worker
	for i := range cfg.Workers {
		node := p.Proc(i % p.Len())
		c, err := v2client.New(v2client.Config{Endpoints: []string{node.ClientURL}, TLS: p.ClientTLS, Timeout: budget})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		workers = append(workers, &worker{id: i, node: node.Name, c: c, h: h, keys: keys, stale: cfg.StaleReads,
			budget: budget, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), seen: map[string]seenValue{}})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(stop) })
	}
	nem := &nemesis{p: p, h: h, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 1<<32))}
	nemErr := nem.run(time.Now().Add(cfg.Duration))
	if nemErr != nil { // leave nothing faulty behind for the final reads
		p.Heal()
		for i := range p.Len() {
			if p.Running(i) {
				_ = p.Resume(i)
			}
		}
	}
	close(stop)
	wg.Wait()

	r := &Report{Seed: cfg.Seed}
	out := cfg.OutDir
	if out == "" {
		out = os.Getenv("CAIRN_FAULTS_OUT")
	}
	if out == "" {
		out = os.TempDir()
		if d, err := os.MkdirTemp("", "cairn-faults-"); err == nil {
			out = d
		}
		defer os.Remove(out) // only if nothing was written to it
	}
	if nemErr != nil { // check what was recorded all the same
		r.Stats = h.Stats()
		r.Verdict, _ = Check(h.Ops(), h.Faults(), cfg.CheckTimeout, out)
		return r, nemErr
	}
	final, err := finalReads(p, h, keys, cfg.RecoverTimeout, budget)
	if err != nil {
		return r, err
	}
	r.Final = final
	r.Stats = h.Stats()
	ops := h.Ops()
	r.Lost = LostWrites(ops, final)
	r.Conflicts = IndexConflicts(ops)
	r.Verdict, err = Check(ops, h.Faults(), cfg.CheckTimeout, out)
	return r, err
}

// finalReads waits until every member's local replica holds the same
// value of every key, then reads each key linearizably through every
// member, into the history, and returns the first member's answers.
func finalReads(p *clustertest.Procs, h *History, keys []string, timeout, budget time.Duration) (map[string]Output, error) {
	clients := make([]*v2client.Client, p.Len())
	for i := range clients {
		c, err := v2client.New(v2client.Config{Endpoints: []string{p.Proc(i).ClientURL}, TLS: p.ClientTLS, Timeout: budget})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		clients[i] = c
	}
	get := func(i int, key string, stale bool) (Output, error) {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		ev, err := clients[i].Get(ctx, key, v2client.GetOptions{Stale: stale})
		out, _ := classify(Input{Kind: Read, Key: key}, ev, err)
		if out.Result == Unknown {
			return out, fmt.Errorf("%s: GET %s: %w", p.Proc(i).Name, key, err)
		}
		return out, nil
	}
	err := poll.Check(timeout, func() error {
		for _, key := range keys {
			var first Output
			for i := range clients {
				out, err := get(i, key, true)
				if err != nil {
					return err
				}
				if i == 0 {
					first = out
				} else if out != first {
					return fmt.Errorf("%s: %s has %s, %s has %s", key, p.Proc(0).Name, describe(Input{Kind: Read, Key: key}, first),
						p.Proc(i).Name, describe(Input{Kind: Read, Key: key}, out))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("faults: the members' replicas did not converge after the faults: %w", err)
	}
	final := map[string]Output{}
	var errs []error
	for i := range clients {
		client := h.NewClient()
		for _, key := range keys {
			in := Input{Kind: Read, Key: key}
			call := h.Now()
			out, err := get(i, key, false)
			h.Add(Op{Client: client, Worker: -1, Node: p.Proc(i).Name, In: in, Out: out, Call: call, Return: h.Now()})
			errs = append(errs, err)
			if i == 0 {
				final[key] = out
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("faults: final reads: %w", err)
	}
	return final, nil
}
