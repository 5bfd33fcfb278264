package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestSchedule(t *testing.T) {
	s := schedule{keys: 4, members: 3, interval: time.Second}
	for n, want := range []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond, time.Second, 1250 * time.Millisecond} {
		if got := s.due(uint64(n)); got != want {
			t.Errorf("due(%d) = %v, want %v", n, got, want)
		}
	}
	// Over keys×members heartbeats, every key goes to every member once.
	seen := map[[2]int]int{}
	for n := range uint64(12) {
		if k := s.key(n); k != int(n%4) {
			t.Errorf("key(%d) = %d", n, k)
		}
		seen[[2]int{s.key(n), s.member(n)}]++
	}
	if len(seen) != 12 {
		t.Errorf("key×member pairs over 12 heartbeats: %v; want each of the 12 once", seen)
	}
	for d, want := range map[time.Duration]uint64{0: 0, 1: 1, 250 * time.Millisecond: 1, 251 * time.Millisecond: 2, time.Second: 4, 1100 * time.Millisecond: 5, 3 * time.Second: 12} {
		if got := s.within(d); got != want {
			t.Errorf("within(%v) = %d, want %d", d, got, want)
		}
	}
	big := schedule{keys: 100000, members: 3, interval: 10 * time.Second}
	if got := big.within(5 * time.Minute); got != 3000000 || big.rate() != 10000 {
		t.Errorf("100000 keys every 10s: %d heartbeats in 5m at %v/s; want 3000000 at 10000/s", got, big.rate())
	}
}

// sent is one heartbeat a fake beat saw.
type sent struct {
	at          time.Duration
	key, member int
}

// fakeBeat answers after took, records each heartbeat and fails those
// fail says to.
func fakeBeat(start time.Time, took time.Duration, log *[]sent, fail func(key int) error) beat {
	var mu sync.Mutex
	return func(ctx context.Context, key, member int) error {
		mu.Lock()
		*log = append(*log, sent{time.Since(start), key, member})
		mu.Unlock()
		time.Sleep(took) // in the synctest bubble: simulated, returns at once
		if fail != nil {
			return fail(key)
		}
		return nil
	}
}

// TestPacedOnTime: a cluster that answers in 10 ms gets every heartbeat
// at its due time, none late, each key once per interval.
func TestPacedOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := schedule{keys: 10, members: 3, interval: time.Second}
		var log []sent
		c := &counters{}
		pt, elapsed := paced(context.Background(), s, s.within(3*time.Second), 3*time.Second, 4, fakeBeat(time.Now(), 10*time.Millisecond, &log, nil), c)
		if pt.due != 30 || pt.sent != 30 || pt.late != 0 || pt.lost != 0 || pt.hist.Count() != 30 || len(pt.errs) != 0 || c.ok.Load() != 30 {
			t.Fatalf("due %d sent %d late %d lost %d answered %d errors %v ok %d; want 30 sent and answered, nothing else",
				pt.due, pt.sent, pt.late, pt.lost, pt.hist.Count(), pt.errs, c.ok.Load())
		}
		if pt.lag.Max() != 0 || pt.lateWaiting != 0 {
			t.Errorf("max lag %v, %d late waiting for a worker; want 0 and none (fake time)", pt.lag.Max(), pt.lateWaiting)
		}
		if want := s.due(29) + 10*time.Millisecond; elapsed != want {
			t.Errorf("elapsed %v; want the last due time plus its answer, %v", elapsed, want)
		}
		perKey := map[int]int{}
		for i, h := range log {
			if h.at != s.due(uint64(i)) {
				t.Errorf("heartbeat %d sent at %v, due %v", i, h.at, s.due(uint64(i)))
			}
			perKey[h.key]++
		}
		for k := range 10 {
			if perKey[k] != 3 {
				t.Errorf("key %d refreshed %d times in 3 intervals; want 3", k, perKey[k])
			}
		}
	})
}

// TestPacedLate: one worker and 200 ms answers keep up with 5/s, not the
// 10/s asked: heartbeat n starts at n×200ms, n×100ms after its due time,
// late from the third on. The run still sends every heartbeat.
func TestPacedLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := schedule{keys: 10, members: 2, interval: time.Second}
		var log []sent
		pt, elapsed := paced(context.Background(), s, 10, 0, 1, fakeBeat(time.Now(), 200*time.Millisecond, &log, nil), &counters{})
		if pt.sent != 10 || pt.late != 8 || pt.lateWaiting != 8 || pt.lag.Max() != 900*time.Millisecond || elapsed != 2*time.Second {
			t.Errorf("sent %d, late %d (%d waiting), max lag %v, elapsed %v; want 10, 8 (8), 900ms, 2s", pt.sent, pt.late, pt.lateWaiting, pt.lag.Max(), elapsed)
		}
	})
}

// TestPacedCutoff: a run behind its schedule ends at its cutoff: with
// 300 ms answers and one worker, heartbeats 0-3 start at 0, 300, 600 and
// 900 ms; the fifth would start at 1.2s, after the 1s cutoff.
func TestPacedCutoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := schedule{keys: 10, members: 2, interval: time.Second}
		var log []sent
		pt, elapsed := paced(context.Background(), s, s.within(time.Second), time.Second, 1, fakeBeat(time.Now(), 300*time.Millisecond, &log, nil), &counters{})
		if pt.due != 10 || pt.sent != 4 || pt.late != 3 || pt.lateWaiting != 3 || pt.hist.Count() != 4 || elapsed != 1200*time.Millisecond {
			t.Errorf("due %d, sent %d, late %d (%d waiting), answered %d, elapsed %v; want 10, 4, 3 (3), 4, 1.2s", pt.due, pt.sent, pt.late, pt.lateWaiting, pt.hist.Count(), elapsed)
		}
	})
}

// TestPacedLostAndErrors: an expired key counts as lost, other failures
// as errors by kind, and neither as answered.
func TestPacedLostAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := schedule{keys: 5, members: 3, interval: time.Second}
		var log []sent
		fail := func(key int) error {
			switch key {
			case 1:
				return fmt.Errorf("%w; registering it again: status 500", errExpired)
			case 3:
				return &statusError{code: 500, body: "boom"}
			}
			return nil
		}
		c := &counters{}
		pt, _ := paced(context.Background(), s, 10, 0, 2, fakeBeat(time.Now(), time.Millisecond, &log, fail), c)
		if pt.lost != 2 || pt.lostOnTime != 2 || pt.reregistered != 0 || pt.errs["status 500"] != 2 || len(pt.errs) != 1 || pt.hist.Count() != 6 || c.ok.Load() != 6 || c.errs.Load() != 4 {
			t.Errorf("lost %d, errors %v, answered %d (counters %d ok %d errors); want 2 lost, 2 status 500, 6 answered",
				pt.lost, pt.errs, pt.hist.Count(), c.ok.Load(), c.errs.Load())
		}
	})
}

// TestPacedLostAfterGap: a key found expired after a gap longer than its
// TTL (one worker, 1.2 s answers, keys due every 0.5 s) is the run's
// fault, not the cluster's; both keys are written again.
func TestPacedLostAfterGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := schedule{keys: 2, members: 1, interval: time.Second, ttl: 1500 * time.Millisecond}
		seen := map[int]bool{}
		var log []sent
		pt, _ := paced(context.Background(), s, 4, 0, 1, fakeBeat(time.Now(), 1200*time.Millisecond, &log, func(key int) error {
			if seen[key] {
				return errExpired
			}
			seen[key] = true
			return nil
		}), &counters{})
		if pt.lost != 2 || pt.lostOnTime != 0 || pt.reregistered != 2 || pt.hist.Count() != 2 {
			t.Errorf("lost %d (%d on time), %d written again, %d answered; want 2 (0), 2, 2", pt.lost, pt.lostOnTime, pt.reregistered, pt.hist.Count())
		}
	})
}

// TestPacedCancel: a run whose context ends stops dispatching and counts
// as due only what it dispatched.
func TestPacedCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := schedule{keys: 10, members: 1, interval: time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 1450*time.Millisecond)
		defer cancel()
		var log []sent
		pt, _ := paced(ctx, s, 100, 0, 2, fakeBeat(time.Now(), time.Millisecond, &log, func(int) error { return ctx.Err() }), &counters{})
		if pt.due != 15 || pt.sent != 15 {
			t.Errorf("due %d, sent %d; want the 15 due before the end at 1.45s", pt.due, pt.sent)
		}
	})
}

func TestParseMetrics(t *testing.T) {
	text := []byte(`# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 1.2582912e+08
process_cpu_seconds_total_other 99
go_gc_duration_seconds{quantile="0"} 1e-05
cairn_raft_commit_index 42 1700000000000
`)
	m := parseMetrics(text, metricCPU, metricRSS, "cairn_raft_commit_index", "absent")
	want := map[string]float64{metricCPU: 12.5, metricRSS: 125829120, "cairn_raft_commit_index": 42}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("parseMetrics = %v, want %v", m, want)
	}
}

func TestUsage(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	before := []memberSample{
		{cpu: f(10), rss: f(100), raft: u(1000)},
		{cpu: f(5), rss: f(200), raft: u(998)},
		{missing: []string{"/metrics (status 404)"}, raft: u(990)},
	}
	after := []memberSample{
		{cpu: f(15), rss: f(150), raft: u(1500)},
		{cpu: f(7), rss: f(220), raft: u(1499)},
		{missing: []string{"/metrics (status 404)"}},
	}
	ms, grew := usage([]string{"a", "b", "c"}, before, after, 10*time.Second)
	if grew == nil || *grew != 500 {
		t.Errorf("raft entries %v; want 500 (highest index 1000 -> 1500)", grew)
	}
	if *ms[0].CPUSeconds != 5 || *ms[0].CPUPercent != 50 || *ms[1].CPUPercent != 20 || *ms[0].RSSEnd != 150 {
		t.Errorf("a: %+v, b: %+v", ms[0], ms[1])
	}
	if ms[2].CPUSeconds != nil || len(ms[2].NotExposed) != 1 || ms[2].RaftIndexEnd != nil {
		t.Errorf("c: %+v; want no CPU, /metrics not exposed once, no end index", ms[2])
	}
	if _, grew := usage([]string{"a"}, before[2:], after[2:], time.Second); grew != nil {
		t.Errorf("raft entries %d from a member without an end index", *grew)
	}
	if !errors.Is(fmt.Errorf("x: %w", errExpired), errExpired) {
		t.Fatal("errExpired does not wrap")
	}
}

func TestCPUCost(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	before := []memberSample{{cpu: f(10)}, {cpu: f(5)}}
	after := []memberSample{{cpu: f(12)}, {cpu: f(6)}}
	c := cpuCost(before, after, time.Second, 2*time.Second, 1000)
	if c == nil || c.Members == nil || *c.Members != 3000 || c.Generator == nil || *c.Generator != 1000 {
		t.Fatalf("cpuCost = %+v; want members 3000 µs, generator 1000 µs per request", c)
	}
	// A member without process collectors: no members' figure, not a
	// partial sum; a generator not measured (-1): none either.
	c = cpuCost(append(before, memberSample{}), append(after, memberSample{}), -1, -1, 1000)
	if c == nil || c.Members != nil || c.Generator != nil {
		t.Fatalf("cpuCost with a member not measured = %+v; want neither figure", c)
	}
	if c := cpuCost(before, after, 0, time.Second, 0); c != nil {
		t.Errorf("cpuCost of no request = %+v; want nil", c)
	}
}
