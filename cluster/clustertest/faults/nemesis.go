//go:build linux

package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// rotation is the order faults are injected in: every kind comes round
// every third fault, partitions alternating between their two forms.
var rotation = []string{FaultKill, FaultPause, FaultPartition, FaultKill, FaultPause, FaultBlackhole}

// nemesis injects faults into p one at a time, healing each and waiting
// for the cluster to recover before the next.
type nemesis struct {
	p   *clustertest.Procs
	h   *History
	cfg Config
	rng *rand.Rand
}

// run injects faults until the deadline has passed and at least the
// configured rounds of each kind were made. Its error is a cluster that did
// not recover from a fault.
func (n *nemesis) run(deadline time.Time) error {
	rounds := map[string]int{}
	for i := 0; time.Now().Before(deadline) || !n.enoughRounds(rounds); i++ {
		kind := rotation[i%len(rotation)]
		if err := n.inject(kind); err != nil {
			return err
		}
		if kind == FaultBlackhole {
			kind = FaultPartition
		}
		rounds[kind]++
		n.wait(n.cfg.Quiet)
	}
	return nil
}

func (n *nemesis) enoughRounds(rounds map[string]int) bool {
	for _, k := range []string{FaultKill, FaultPause, FaultPartition} {
		if rounds[k] < n.cfg.MinRounds {
			return false
		}
	}
	return true
}

// wait waits d.
func (n *nemesis) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// targets picks the nodes a fault hits: the leader half of the time, else
// any node; a partition of 5 or more may cut off a minority of two.
func (n *nemesis) targets(kind string) []int {
	size := n.p.Len()
	first := n.rng.IntN(size)
	if n.rng.IntN(2) == 0 {
		if l, err := n.p.FindLeader(); err == nil {
			first = l
		}
	}
	out := []int{first}
	if (kind == FaultPartition || kind == FaultBlackhole) && size >= 5 && n.rng.IntN(2) == 0 {
		out = append(out, (first+1+n.rng.IntN(size-1))%size)
	}
	return out
}

// inject applies one fault for a random time in [FaultMin, FaultMax],
// heals it and waits until every node is healthy again.
func (n *nemesis) inject(kind string) error {
	targets := n.targets(kind)
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = n.p.Proc(t).Name
	}
	hold := n.cfg.FaultMin + time.Duration(n.rng.Int64N(int64(n.cfg.FaultMax-n.cfg.FaultMin)+1))
	f := Fault{Kind: kind, Targets: names, Start: n.h.Now()}
	var err error
	switch kind {
	case FaultKill:
		for _, t := range targets {
			n.p.Kill(t)
		}
	case FaultPause:
		for _, t := range targets {
			err = errors.Join(err, n.p.Pause(t))
		}
	case FaultPartition:
		n.p.Partition(targets...)
	case FaultBlackhole:
		n.p.Blackhole(targets...)
	}
	if err != nil {
		return fmt.Errorf("faults: %s %v: %w", kind, names, err)
	}
	n.wait(hold)
	healing := time.Now()
	switch kind {
	case FaultKill:
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for k, t := range targets {
			wg.Go(func() { errs[k] = n.p.Restart(t) })
		}
		wg.Wait()
		err = errors.Join(errs...)
	case FaultPause:
		for _, t := range targets {
			err = errors.Join(err, n.p.Resume(t))
		}
	case FaultPartition, FaultBlackhole:
		n.p.Heal()
	}
	f.End = n.h.Now()
	n.h.AddFault(f)
	if err != nil {
		return fmt.Errorf("faults: healing %s %v: %w", kind, names, err)
	}
	began := time.Now()
	if err := n.recovered(); err != nil {
		return fmt.Errorf("faults: after %s %v (held %v, healed at %v): the cluster did not recover: %w",
			kind, names, hold.Round(time.Millisecond), time.Duration(f.End).Round(time.Millisecond), err)
	}
	n.cfg.Logf("%7.1fs %-9s %v for %v, healed in %v, all healthy %v later", time.Duration(f.Start).Seconds(), kind, names,
		hold.Round(10*time.Millisecond), began.Sub(healing).Round(10*time.Millisecond), time.Since(began).Round(10*time.Millisecond))
	return nil
}

// recovered waits until every node is healthy and a majority names one
// leader.
func (n *nemesis) recovered() error {
	timeout := n.cfg.RecoverTimeout
	for i := range n.p.Len() {
		if err := n.p.WaitHealthy(i, timeout); err != nil {
			return err
		}
	}
	return poll.Check(timeout, func() error {
		_, err := n.p.FindLeader()
		return err
	})
}
