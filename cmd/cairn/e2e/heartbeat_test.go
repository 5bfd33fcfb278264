//go:build linux

package e2e

// Heartbeats (PUT ?refresh=true&prevExist=true&ttl=N) on three real cairn
// processes, as issue 12 states their guarantees whatever a heartbeat
// costs inside the cluster: a registration whose heartbeats stop expires
// within its TTL plus one expiry tick on every member and in every
// member's DNS; one that keeps heartbeating, through different members,
// survives a leader SIGKILL and restart, and a partition of the leader,
// without ever expiring; and one that stopped before the fault expires at
// most one TTL later than it would have. Linux only, for
// clustertest.StartProcs.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest"
)

// hbSlack is added to every bound of these tests: process scheduling on a
// busy 2-core machine, a poll's period, a dig's round trip.
const hbSlack = 3 * time.Second

// hbRecord is the SkyDNS record these tests register.
const hbRecord = `{"host":"10.0.0.21","port":80}`

func hbSeconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// hbRegister writes key with the test's record and ttl through node i.
func hbRegister(t *testing.T, p *clustertest.Procs, i int, key string, ttl time.Duration) {
	t.Helper()
	resp, body, err := p.Do(i, http.MethodPut, "/v2/keys"+key, "", "value="+url.QueryEscape(hbRecord)+"&ttl="+hbSeconds(ttl))
	if err != nil || resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("register %s through %s: %v %s", key, p.Proc(i).Name, clStatus(resp, err), body)
	}
}

// hbRefresh sends one heartbeat for key through node i within ctx. lost
// is true when the answer was error 100: the key had expired.
func hbRefresh(ctx context.Context, p *clustertest.Procs, i int, key string, ttl time.Duration) (lost bool, err error) {
	resp, body, err := p.DoContext(ctx, i, http.MethodPut, "/v2/keys"+key, "refresh=true&prevExist=true&ttl="+hbSeconds(ttl), "")
	switch {
	case err != nil:
		return false, fmt.Errorf("heartbeat %s through %s: %w", key, p.Proc(i).Name, err)
	case resp.StatusCode == http.StatusOK:
		return false, nil
	case resp.StatusCode == http.StatusNotFound && bytes.Contains(body, []byte(`"errorCode":100`)):
		return true, fmt.Errorf("heartbeat %s through %s: expired: %s", key, p.Proc(i).Name, body)
	}
	return false, fmt.Errorf("heartbeat %s through %s: status %d: %s", key, p.Proc(i).Name, resp.StatusCode, body)
}

// TestHeartbeatStopExpires: a registration refreshed through each member
// in turn shows the refreshed TTL on a linearizable read anywhere; when
// its heartbeats stop it is gone from every member's replica and every
// member's DNS within its TTL plus one expiry tick (plus slack).
func TestHeartbeatStopExpires(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	p := startProcs(t, 3, clustertest.ProcOptions{DNS: true})
	p.Leader(t)
	const key, name = "/skydns/internal/cairn/hb/hb-1", "hb-1.hb.cairn.internal"
	hbRegister(t, p, 0, key, ttl)
	for i := range 3 {
		Poll(t, 5*time.Second, p.Proc(i).Name+"'s DNS answers "+name, func() error {
			if out := strings.TrimSpace(dig(t, p.Proc(i).DNSAddr, name, "A", "+short")); out != "10.0.0.21" {
				return fmt.Errorf("answer %q", out)
			}
			return nil
		})
	}

	var last time.Time
	for i := range 3 {
		ctx, cancel := clCtx(p)
		_, err := hbRefresh(ctx, p, i, key, ttl)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		last = time.Now()
		for j := range 3 {
			ev, err := clGet(p, j, key, "")
			if err != nil {
				t.Fatalf("after the heartbeat through %s: %v", p.Proc(i).Name, err)
			}
			if n := ev.Node; n.TTL < 1 || n.TTL > 2 || n.Expiration == nil || n.Value == nil || *n.Value != hbRecord {
				t.Fatalf("after the heartbeat through %s, %s reads %+v; want the record with a ttl of 1-2 s", p.Proc(i).Name, p.Proc(j).Name, n)
			}
		}
	}

	bound := ttl + cluster.DefaultExpiryInterval + hbSlack
	Poll(t, time.Until(last.Add(bound)), "the registration gone from every member's replica and DNS", func() error {
		for i := range 3 {
			if err := gone(clGet(p, i, key, "stale=true")); err != nil {
				return fmt.Errorf("%s: %v", p.Proc(i).Name, err)
			}
			if st := digStatus(dig(t, p.Proc(i).DNSAddr, name, "A")); st != "NXDOMAIN" {
				return fmt.Errorf("%s's DNS: %s", p.Proc(i).Name, st)
			}
		}
		return nil
	})
	t.Logf("gone everywhere %v after the last heartbeat (ttl %v, bound %v)", time.Since(last).Round(time.Millisecond), ttl, bound)
}

// heartbeater refreshes one key every period, through the members in
// turn; a heartbeat that fails is tried at once through the next member,
// each attempt bounded as a client's would be.
type heartbeater struct {
	mu    sync.Mutex
	acks  []hbAck
	lost  []string
	fails int

	stop func()
}

type hbAck struct {
	at     time.Time
	member int
}

func startHeartbeater(t *testing.T, p *clustertest.Procs, key string, ttl, period, attempt time.Duration) *heartbeater {
	ctx, cancel := context.WithCancel(context.Background())
	h := &heartbeater{}
	done := make(chan struct{})
	h.stop = func() { cancel(); <-done }
	t.Cleanup(h.stop)
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for turn := 0; ; turn++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for try := range p.Len() {
				i := (turn + try) % p.Len()
				actx, acancel := context.WithTimeout(ctx, attempt)
				lost, err := hbRefresh(actx, p, i, key, ttl)
				acancel()
				if ctx.Err() != nil {
					return
				}
				h.mu.Lock()
				switch {
				case err == nil:
					h.acks = append(h.acks, hbAck{time.Now(), i})
				case lost:
					h.lost = append(h.lost, time.Now().Format("15:04:05.000")+": "+err.Error())
				default:
					h.fails++
				}
				h.mu.Unlock()
				if err == nil || lost {
					break
				}
			}
		}
	}()
	return h
}

// since is the number of heartbeats acknowledged after t0, and through
// how many distinct members.
func (h *heartbeater) since(t0 time.Time) (n, members int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[int]bool{}
	for _, a := range h.acks {
		if a.at.After(t0) {
			n++
			seen[a.member] = true
		}
	}
	return n, len(seen)
}

// TestHeartbeatFailover: through a leader SIGKILL and restart, and
// through a partition of the leader on the peer links, an instance that
// keeps heartbeating (through every member in turn) never expires, on a
// survivor's replica read every 100 ms, and no heartbeat finds it
// expired; one whose last heartbeat came just before the fault expires at
// most one TTL later than it would have (plus the expiry tick and slack),
// and on the old leader too once it is back.
func TestHeartbeatFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		fault, after func(t *testing.T, p *clustertest.Procs, leader int)
	}{
		{"leader-kill", func(_ *testing.T, p *clustertest.Procs, l int) { p.Kill(l) }, func(t *testing.T, p *clustertest.Procs, l int) {
			if err := p.Restart(l); err != nil {
				t.Fatalf("restarting %s: %v", p.Proc(l).Name, err)
			}
		}},
		{"leader-partition", func(_ *testing.T, p *clustertest.Procs, l int) { p.Partition(l) }, func(_ *testing.T, p *clustertest.Procs, _ int) { p.Heal() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testHeartbeatFailover(t, tc.fault, tc.after)
		})
	}
}

func testHeartbeatFailover(t *testing.T, fault, after func(*testing.T, *clustertest.Procs, int)) {
	// A TTL that outlasts an election on a busy machine: today each
	// heartbeat is a raft write, which waits for the new leader.
	const (
		ttl     = 4 * time.Second
		period  = 500 * time.Millisecond
		attempt = 1500 * time.Millisecond
	)
	p := startProcs(t, 3, clustertest.ProcOptions{})
	leader := p.Leader(t)
	reader := (leader + 1) % 3 // a survivor on the majority side
	const alive, stopped = "/skydns/internal/cairn/hb/alive", "/skydns/internal/cairn/hb/stopped"
	hbRegister(t, p, reader, alive, ttl)
	hbRegister(t, p, reader, stopped, ttl)
	hb := startHeartbeater(t, p, alive, ttl, period, attempt)
	Poll(t, 10*time.Second, "a heartbeat through every member", func() error {
		if n, members := hb.since(time.Time{}); members < 3 {
			return fmt.Errorf("%d heartbeats through %d members", n, members)
		}
		return nil
	})

	// The reader samples the live registration on the survivor's replica
	// every 100 ms until the end, counting lapses.
	var (
		mu     sync.Mutex
		lapses []string
		reads  int
	)
	ctx, stopReading := context.WithCancel(context.Background())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_, err := clGet(p, reader, alive, "stale=true")
			mu.Lock()
			reads++
			if err != nil {
				lapses = append(lapses, time.Now().Format("15:04:05.000")+": "+err.Error())
			}
			mu.Unlock()
		}
	}()
	defer func() { stopReading(); <-readerDone }()

	// The other instance's last heartbeat, just before the fault.
	rctx, cancel := clCtx(p)
	_, err := hbRefresh(rctx, p, reader, stopped, ttl)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	fault(t, p, leader)
	t.Logf("fault on %s (the leader) %v after the last heartbeat of %s", p.Proc(leader).Name, time.Since(stoppedAt).Round(time.Millisecond), stopped)

	bound := 2*ttl + cluster.DefaultExpiryInterval + hbSlack
	Poll(t, time.Until(stoppedAt.Add(bound)), stopped+" expired on "+p.Proc(reader).Name, func() error {
		return gone(clGet(p, reader, stopped, "stale=true"))
	})
	t.Logf("%s expired %v after its last heartbeat (ttl %v, bound %v)", stopped, time.Since(stoppedAt).Round(time.Millisecond), ttl, bound)
	newLeader := p.Leader(t)

	after(t, p, leader)
	back := time.Now()
	// Heartbeats go on through every member, the old leader included, for
	// more than a TTL.
	want := int(ttl/period) + 2
	Poll(t, 3*ttl+hbSlack, fmt.Sprintf("%d heartbeats through all three members after %s is back", want, p.Proc(leader).Name), func() error {
		if n, members := hb.since(back); n < want || members < 3 {
			return fmt.Errorf("%d heartbeats through %d members", n, members)
		}
		return nil
	})
	Poll(t, 10*time.Second, stopped+" gone on "+p.Proc(leader).Name+", back", func() error {
		return gone(clGet(p, leader, stopped, ""))
	})
	hb.stop()
	stopReading()
	<-readerDone

	hb.mu.Lock()
	defer hb.mu.Unlock()
	if len(hb.lost) > 0 {
		t.Errorf("heartbeats found %s expired: %v", alive, hb.lost)
	}
	if len(lapses) > 0 {
		t.Errorf("%s lapsed in %d of %d reads on %s: %v", alive, len(lapses), reads, p.Proc(reader).Name, lapses)
	}
	t.Logf("new leader %s; %d heartbeats acknowledged, %d attempts failed over; %d reads of %s on %s, none missed it",
		p.Proc(newLeader).Name, len(hb.acks), hb.fails, reads, alive, p.Proc(reader).Name)
}
