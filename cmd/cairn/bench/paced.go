package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// The paced (open-loop) refresh: every registration heartbeats once per
// interval, whatever the cluster's latency, as real instances do. A closed
// loop measures how fast the cluster can go; this measures whether it keeps
// up with a given population, and says so when the generator itself could
// not (a heartbeat sent late).

// LateAfter is how far behind its due time a heartbeat may start before it
// counts as late: the generator (this machine) did not keep up.
const LateAfter = 100 * time.Millisecond

// errExpired is a heartbeat answered etcd error 100 (Key not found): the
// registration had expired, it is lost.
var errExpired = errors.New("bench: the key had expired (error 100, Key not found)")

// schedule is the plan of a paced run of keys registrations heartbeating
// once per interval over members members. Heartbeat n is due n×interval/keys
// after the start (evenly spread in time), refreshes key n mod keys (each
// key once per interval) and goes to member (n mod keys + n div keys) mod
// members: evenly spread over the members, and each key moves to the next
// member every round, as an instance whose client fails over would.
type schedule struct {
	keys, members uint64
	interval      time.Duration
	ttl           time.Duration // the keys', to tell a lost key's cause
}

// due is when heartbeat n is due, from the start of the run.
func (s schedule) due(n uint64) time.Duration {
	round, k := n/s.keys, n%s.keys
	return time.Duration(round)*s.interval + time.Duration(k*uint64(s.interval)/s.keys)
}

func (s schedule) key(n uint64) int { return int(n % s.keys) }

func (s schedule) member(n uint64) int { return int((n%s.keys + n/s.keys) % s.members) }

// within is the number of heartbeats due before d: the least n with
// due(n) >= d.
func (s schedule) within(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	// due is monotonic: a binary search over a bound from the rate.
	hi := uint64(d/s.interval+1) * s.keys
	lo := uint64(0)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if s.due(mid) < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// rate is the target heartbeats per second.
func (s schedule) rate() float64 { return float64(s.keys) / s.interval.Seconds() }

// beat sends one heartbeat for key through member; errExpired counts the
// registration lost rather than an error: errExpired itself when the key
// was written again, wrapped when that failed.
type beat func(ctx context.Context, key, member int) error

// pacedTally is what a paced run counted.
type pacedTally struct {
	tally               // answered heartbeats' latencies, other errors
	lag       Histogram // start minus due, of every heartbeat started
	due, sent uint64    // heartbeats the schedule had due, and started
	late      uint64    // started more than LateAfter after due
	// lateWaiting is the late heartbeats that, at their turn, found
	// every worker waiting on an answer: the cluster's pace with that
	// many in flight. The other late ones found a worker free: the
	// dispatcher itself was behind (the generator's CPU).
	lateWaiting uint64
	// lost is the heartbeats answered error 100; lostOnTime those of them
	// whose key had a heartbeat answered less than a TTL before this one
	// was sent (or none yet in the run: the setup's TTL is longer), so
	// that the key should have been alive; the rest followed a gap over
	// the TTL, which a run behind schedule makes. reregistered counts the
	// lost keys written again.
	lost, lostOnTime, reregistered uint64
}

// paced runs the schedule until total heartbeats are sent, or until
// cutoff (when not 0: a run behind its schedule ends on time, not when it
// has caught up) or ctx ends, with at most workers in flight. A
// dispatcher hands each heartbeat to a free worker at its due time; when
// every worker is busy the dispatch waits, and the heartbeats behind it
// start late (their lag is recorded). It returns the tallies and the time
// from the start to the last answer.
func paced(ctx context.Context, s schedule, total uint64, cutoff time.Duration, workers int, send beat, c *counters) (*pacedTally, time.Duration) {
	ch := make(chan uint64) // unbuffered: the hand-over is the heartbeat's start
	dctx := ctx
	if cutoff > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, cutoff)
		defer cancel()
	}
	all := &pacedTally{due: total}
	var busy atomic.Int64 // workers with a heartbeat in flight
	// lastOK is, per key, 1 + the start (since the run's) of its last
	// heartbeat answered 200; 0: none yet.
	lastOK := make([]atomic.Int64, s.keys)
	tallies := make([]pacedTally, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		wg.Go(func() {
			t := &tallies[i]
			for n := range ch {
				t0 := time.Now()
				k := s.key(n)
				err := send(ctx, k, s.member(n))
				switch {
				case err == nil:
					t.hist.Record(time.Since(t0))
					lastOK[k].Store(int64(t0.Sub(start)) + 1)
					c.ok.Add(1)
				case errors.Is(err, errExpired):
					t.lost++
					if prev := lastOK[k].Load(); prev == 0 || t0.Sub(start)-time.Duration(prev-1) < s.ttl {
						t.lostOnTime++
					}
					if err == errExpired { // written again
						t.reregistered++
					}
					c.errs.Add(1)
				case ctx.Err() != nil:
				default:
					t.fail(err)
					c.errs.Add(1)
				}
				busy.Add(-1)
			}
		})
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var n uint64
dispatch:
	for ; n < total; n++ {
		if wait := s.due(n) - time.Since(start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-dctx.Done():
				break dispatch
			}
		}
		full := busy.Load() >= int64(workers)
		select {
		case ch <- n:
			busy.Add(1) // here, not in the worker: the next turn sees it
		case <-dctx.Done():
			break dispatch
		}
		lag := time.Since(start) - s.due(n)
		all.lag.Record(lag)
		all.sent++
		if lag > LateAfter {
			all.late++
			if full {
				all.lateWaiting++
			}
		}
	}
	timer.Stop()
	close(ch)
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		all.due = n // interrupted: what was due until then
	}
	for i := range tallies {
		t := &tallies[i]
		all.tally.merge(&t.tally)
		all.lost += t.lost
		all.lostOnTime += t.lostOnTime
		all.reregistered += t.reregistered
	}
	return all, elapsed
}
