package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
)

// fencedResource is the protected resource of docs/modules.md: it accepts
// a write only with a token at least as high as the highest it has seen,
// so a holder that lost the lock without knowing it (paused, partitioned)
// cannot overwrite the work of a later holder. It also records whether
// two holders were ever inside their critical sections at once, which a
// lock must prevent as long as each holder finishes within its TTL.
type fencedResource struct {
	mu       sync.Mutex
	highest  uint64
	active   string   // the holder inside its critical section, if any
	accepted []uint64 // the tokens of accepted writes, in order
	rejected []string
	overlaps []string
}

func (r *fencedResource) enter(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active != "" {
		r.overlaps = append(r.overlaps, r.active+" and "+who)
	}
	r.active = who
}

func (r *fencedResource) leave(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active == who {
		r.active = ""
	}
}

// write is the fenced write: refused with a token below the highest seen.
func (r *fencedResource) write(who string, token uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token < r.highest {
		r.rejected = append(r.rejected, fmt.Sprintf("%s with token %d after %d", who, token, r.highest))
		return false
	}
	r.highest = token
	r.accepted = append(r.accepted, token)
	return true
}

// modClient contends for one lock through whichever member is running.
type modClient struct {
	p       *clustertest.Procs
	name    string
	next    atomic.Int64  // the member tried first next time
	retries *atomic.Int64 // requests sent again to another member
}

// do sends one request to a running member, trying the others when one
// cannot be reached (it was killed); it gives up with ctx.
func (c *modClient) do(ctx context.Context, method, path, query string) (int, string, error) {
	var last error
	for ctx.Err() == nil {
		i := int(c.next.Add(1)) % c.p.Len()
		if !c.p.Running(i) {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		resp, body, err := c.p.DoContext(rctx, i, method, path, query, "")
		cancel()
		if err != nil {
			last = err
			c.retries.Add(1)
			continue
		}
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusInternalServerError || isEtcd300(resp.StatusCode, body) {
			// No leader for a moment, or a member going down: elsewhere.
			last = fmt.Errorf("%s %s on n%d: %d %s", method, path, i, resp.StatusCode, body)
			c.retries.Add(1)
			continue
		}
		return resp.StatusCode, string(body), nil
	}
	return 0, "", fmt.Errorf("%s %s: %w (last: %v)", method, path, ctx.Err(), last)
}

// isEtcd300 reports a raft error (etcd 300: no leader, a timeout), which
// a client retries.
func isEtcd300(code int, body []byte) bool {
	return code == http.StatusInternalServerError && strings.Contains(string(body), `"errorCode":300`)
}

// TestModLockLeaderKill: clients contend for one lock on 3 real members
// while the raft leader is SIGKILLed and restarted. The fencing tokens of
// successive holders strictly grow (the fenced resource rejects none), and
// no two critical sections overlap. Each acquisition has its own value, so
// a client whose member died re-joins its queue entry through another
// member instead of leaving it to expire.
func TestModLockLeaderKill(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	const (
		clients = 4
		lock    = "/mod/v2/lock/e2e/fenced"
	)
	res := &fencedResource{}
	var holds, retries atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		cl := &modClient{p: p, name: "c" + strconv.Itoa(c), retries: &retries}
		cl.next.Store(int64(c))
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				who := cl.name + "-" + strconv.Itoa(n)
				code, body, err := cl.do(ctx, "POST", lock, "ttl=10&value="+who)
				if err != nil || code != http.StatusOK {
					errs <- fmt.Errorf("%s: acquire: %d %q %v", who, code, body, err)
					return
				}
				token, err := strconv.ParseUint(body, 10, 64)
				if err != nil {
					errs <- fmt.Errorf("%s: token %q: %v", who, body, err)
					return
				}
				res.enter(who)
				res.write(who, token)
				res.write(who, token) // a holder may write more than once
				res.leave(who)
				holds.Add(1)
				code, body, err = cl.do(ctx, "DELETE", lock, "index="+body)
				// 404: the release reached a member after an earlier
				// attempt already deleted it, or the entry expired.
				if err != nil || code != http.StatusOK && code != http.StatusNotFound {
					errs <- fmt.Errorf("%s: release: %d %q %v", who, code, body, err)
					return
				}
			}
		})
	}
	waitHolds := func(n int64, what string) {
		t.Helper()
		Poll(t, 30*time.Second, what, func() error {
			select {
			case err := <-errs:
				errs <- err
				return fmt.Errorf("a client failed: %w", err)
			default:
			}
			if h := holds.Load(); h < n {
				return fmt.Errorf("%d holds", h)
			}
			return nil
		})
	}
	waitHolds(20, "20 holds before the kill")
	leader := p.Leader(t)
	p.Kill(leader)
	t.Logf("killed the leader %s after %d holds", p.Proc(leader).Name, holds.Load())
	waitHolds(holds.Load()+20, "20 holds after the kill")
	if err := p.Restart(leader); err != nil {
		t.Fatalf("restart %s: %v", p.Proc(leader).Name, err)
	}
	if err := p.WaitHealthy(leader, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	waitHolds(holds.Load()+20, "20 holds after the restart")
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d holds, %d fenced writes accepted, %d requests sent again to another member", holds.Load(), len(res.accepted), retries.Load())
	if len(res.rejected) > 0 {
		t.Errorf("the fenced resource rejected %d writes, e.g. %s: a later holder had a lower token", len(res.rejected), res.rejected[0])
	}
	if len(res.overlaps) > 0 {
		t.Errorf("%d overlapping critical sections, e.g. %s", len(res.overlaps), res.overlaps[0])
	}
	for i := 1; i < len(res.accepted); i++ {
		if res.accepted[i] < res.accepted[i-1] {
			t.Fatalf("accepted token %d after %d", res.accepted[i], res.accepted[i-1])
		}
	}
}

// TestModLockHolderDies: a holder that stops renewing (its process
// killed) loses the lock once its TTL lapses, and the waiter gets it; a
// waiter whose member is SIGKILLed leaves an entry that expires too, so
// the queue moves on past it.
func TestModLockHolderDies(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	const lock = "/mod/v2/lock/e2e/dies"
	leader := p.Leader(t)
	a, b := (leader+1)%3, (leader+2)%3
	must := func(i int, method, query string, code int) string {
		t.Helper()
		resp, body, err := p.Do(i, method, lock, query, "")
		if err != nil || resp.StatusCode != code {
			t.Fatalf("%s %s?%s on n%d: %v %v %s", method, lock, query, i, err, resp, body)
		}
		return string(body)
	}
	// The holder acquires and then stops renewing, as if killed.
	holder := must(leader, "POST", "ttl=2&value=holder", 200)

	// A waiter on member a, which is then killed: its entry stays behind
	// the holder until its own TTL lapses.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doomed := make(chan error, 1)
	go func() {
		_, _, err := p.DoContext(ctx, a, "POST", lock, "ttl=2&value=doomed", "")
		doomed <- err
	}()
	Poll(t, 20*time.Second, "the doomed waiter to queue", func() error {
		resp, body, err := p.Do(leader, "GET", "/v2/keys/_mod/lock/e2e/dies", "sorted=true", "")
		if err != nil || !strings.Contains(string(body), `"value":"doomed"`) {
			return fmt.Errorf("%v %v %s", err, resp, body)
		}
		return nil
	})
	p.Kill(a)
	if err := <-doomed; err == nil {
		t.Fatal("the waiter on the killed member got an answer")
	}

	// The survivor waits behind both; it gets the lock once both TTLs
	// have lapsed, with a higher token.
	got := must(b, "POST", "ttl=10&value=survivor&timeout=30", 200)
	if g, h := mustUint(t, got), mustUint(t, holder); g <= h {
		t.Errorf("survivor's token %d is not above the dead holder's %d", g, h)
	}
	must(b, "PUT", "ttl=2&index="+holder, 404)                               // the lapsed holder cannot renew
	if body := must(leader, "GET", "field=value", 200); body != "survivor" { // everywhere
		t.Errorf("holder after the lapse: %q", body)
	}
	resp, body, err := p.Do(b, "GET", "/v2/keys/_mod/lock/e2e/dies", "sorted=true", "")
	if err != nil || resp.StatusCode != 200 || strings.Contains(string(body), "doomed") || strings.Contains(string(body), `"value":"holder"`) {
		t.Errorf("queue after the lapse: %v %v %s", err, resp, body)
	}
	must(b, "DELETE", "value=survivor", 200)
	if body := must(b, "GET", "", 200); body != "" {
		t.Errorf("after the release: %q", body)
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("token %q: %v", s, err)
	}
	return u
}

// TestModLeaderFailover: an election on 3 real members. An observer on one
// member sees the leader change when the leader stops renewing (its TTL
// lapses) and the candidate waiting on another member takes over; the
// new leader's index is higher.
func TestModLeaderFailover(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	const election = "/mod/v2/leader/e2e/db"
	do := func(i int, method, query string, code int) string {
		t.Helper()
		resp, body, err := p.Do(i, method, election, query, "")
		if err != nil || resp.StatusCode != code {
			t.Fatalf("%s %s?%s on n%d: %v %v %s", method, election, query, i, err, resp, body)
		}
		return string(body)
	}
	first := do(0, "PUT", "name=alpha&ttl=2", 200)
	if got := do(1, "GET", "", 200); got != "alpha" {
		t.Fatalf("leader %q, want alpha", got)
	}
	watchers := storeWatchers(t, p, 1)
	observed := make(chan string, 1)
	go func() {
		_, body, err := p.Do(1, "GET", election, "wait=true", "")
		if err != nil {
			body = []byte("error: " + err.Error())
		}
		observed <- string(body)
	}()
	// The observer has read alpha once its store watch is registered.
	Poll(t, 20*time.Second, "the observer to watch", func() error {
		if n := storeWatchers(t, p, 1); n <= watchers {
			return fmt.Errorf("%d store watchers on n1", n)
		}
		return nil
	})
	// beta campaigns on n2 and waits; alpha renews once by repeating its
	// PUT (same index), then stops, as a killed process would.
	campaign := make(chan string, 1)
	go func() {
		_, body, err := p.Do(2, "PUT", election, "name=beta&ttl=10&timeout=30", "")
		if err != nil {
			body = []byte("error: " + err.Error())
		}
		campaign <- string(body)
	}()
	if again := do(0, "PUT", "name=alpha&ttl=2", 200); again != first {
		t.Errorf("renewal answered index %s, want %s", again, first)
	}
	won := <-campaign
	if mustUint(t, won) <= mustUint(t, first) {
		t.Errorf("beta's index %s is not above alpha's %s", won, first)
	}
	if got := <-observed; got != "beta" {
		t.Errorf("observer saw %q, want beta", got)
	}
	if got := do(0, "GET", "", 200); got != "beta" {
		t.Errorf("leader %q, want beta", got)
	}
	do(0, "DELETE", "name=beta", 200)
	if got := do(2, "GET", "", 200); got != "" {
		t.Errorf("after beta resigned: %q", got)
	}
}

// storeWatchers is cairn_store_watchers of member i.
func storeWatchers(t *testing.T, p *clustertest.Procs, i int) int {
	t.Helper()
	_, body, err := p.Do(i, "GET", "/metrics", "", "")
	if err != nil {
		t.Fatalf("metrics of n%d: %v", i, err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "cairn_store_watchers "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("cairn_store_watchers %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no cairn_store_watchers on n%d", i)
	return 0
}
