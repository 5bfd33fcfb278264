//go:build linux

package e2e

// Multi-node tests with real cairn processes (clustertest.Procs): forming,
// writes and linearizable reads through any member, leader kills, a 5-node
// cluster losing 2, partitions by a fault-injecting peer proxy, membership
// changes, etcdctl and the Go client against 3 nodes, and catch-up by
// snapshot. Each test runs its own cluster on its own loopback IPs, so they
// run in parallel; TestLeaderKillTimes runs alone because it measures.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
	client "go.etcd.io/etcd/client/v2"
)

// These tests speak to each node through its own v2client
// (clustertest.Procs.Client): the store's types, no JSON of their own.
// Raw HTTP (Procs.Do) is left where a test reads the wire itself (the
// X-Raft-Term header).

// clCtx bounds one request of these tests.
func clCtx(p *clustertest.Procs) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), p.RequestTimeout()+5*time.Second)
}

// clValue is a node's value; "" for a directory.
func clValue(n *store.NodeExtern) string {
	if n == nil || n.Value == nil {
		return ""
	}
	return *n.Value
}

// clWrite is an acknowledged write.
type clWrite struct {
	key, value string
	index      uint64
}

func startProcs(t *testing.T, n int, opts clustertest.ProcOptions) *clustertest.Procs {
	t.Helper()
	return clustertest.StartProcs(t, needCairn(t), n, opts)
}

// clPut writes key=value through node i and returns the acknowledged write.
func clPut(p *clustertest.Procs, i int, key, value string) (clWrite, error) {
	ctx, cancel := clCtx(p)
	defer cancel()
	return clPutContext(ctx, p, i, key, value)
}

// clPutContext is clPut within ctx.
func clPutContext(ctx context.Context, p *clustertest.Procs, i int, key, value string) (clWrite, error) {
	ev, err := p.Client(i).Set(ctx, key, value, v2client.SetOptions{})
	if err != nil {
		return clWrite{}, fmt.Errorf("PUT %s through %s: %w", key, p.Proc(i).Name, err)
	}
	return clWrite{key, value, ev.Node.ModifiedIndex}, nil
}

// clPutRetry is clPut tried again, for up to 30 s, after an error: for
// tests about what follows many writes (a snapshot, a catch-up), not about
// their availability, where an election under load (2 of 3 members up, the
// race detector, the other tests) may refuse or cut short a few of them.
// Writing the same value again leaves the same state; the write returned
// is the last one acknowledged.
func clPutRetry(p *clustertest.Procs, i int, key, value string) (clWrite, error) {
	var w clWrite
	err := poll.Check(30*time.Second, func() (err error) {
		w, err = clPut(p, i, key, value)
		return err
	})
	return w, err
}

func mustClPut(t *testing.T, p *clustertest.Procs, i int, key, value string) clWrite {
	t.Helper()
	w, err := clPut(p, i, key, value)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// clGet reads key through node i with query ("" is linearizable,
// "stale=true" the local replica; recursive=true and quorum=true too).
// An etcd error is a *store.Error.
func clGet(p *clustertest.Procs, i int, key, query string) (*store.Event, error) {
	ctx, cancel := clCtx(p)
	defer cancel()
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, err
	}
	o := v2client.GetOptions{Stale: q.Get("stale") == "true", Recursive: q.Get("recursive") == "true", Quorum: q.Get("quorum") == "true"}
	ev, err := p.Client(i).Get(ctx, key, o)
	if err != nil {
		return nil, fmt.Errorf("GET %s?%s through %s: %w", key, query, p.Proc(i).Name, err)
	}
	return ev, nil
}

// clStatus is the transport error or else the HTTP status, for messages.
func clStatus(resp *http.Response, err error) any {
	if err != nil {
		return err
	}
	return resp.StatusCode
}

// clHas checks that node i reads w (value and modifiedIndex) with query.
func clHas(p *clustertest.Procs, i int, w clWrite, query string) error {
	ev, err := clGet(p, i, w.key, query)
	if err != nil {
		return err
	}
	if clValue(ev.Node) != w.value || ev.Node.ModifiedIndex != w.index {
		return fmt.Errorf("GET %s?%s through %s: %q at index %d; want value %q at index %d", w.key, query, p.Proc(i).Name, clValue(ev.Node), ev.Node.ModifiedIndex, w.value, w.index)
	}
	return nil
}

// clHasAll checks that a recursive read of dir through node i with query
// holds every write of ws.
func clHasAll(p *clustertest.Procs, i int, dir, query string, ws []clWrite) error {
	q := "recursive=true"
	if query != "" {
		q += "&" + query
	}
	ev, err := clGet(p, i, dir, q)
	if err != nil {
		return err
	}
	have := map[string]*store.NodeExtern{}
	var walk func(n *store.NodeExtern)
	walk = func(n *store.NodeExtern) {
		have[n.Key] = n
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(ev.Node)
	var missing []string
	for _, w := range ws {
		if n, ok := have[w.key]; !ok || clValue(n) != w.value || n.ModifiedIndex != w.index {
			var idx uint64
			if ok {
				idx = n.ModifiedIndex
			}
			missing = append(missing, fmt.Sprintf("%s=%s@%d (have %q@%d)", w.key, w.value, w.index, clValue(n), idx))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s?%s through %s lacks %d of %d acknowledged writes, e.g. %v", dir, q, p.Proc(i).Name, len(missing), len(ws), missing[:min(5, len(missing))])
	}
	return nil
}

// unavailable checks that a write or linearizable read on a node cut off
// from the majority failed as it must: an etcd error 300 or 301 with HTTP
// 500 within bound, not a success and not a hang.
func unavailable(what string, err error, took, bound time.Duration) error {
	var se *store.Error
	switch {
	case err == nil:
		return fmt.Errorf("%s: succeeded after %v; want 500 with errorCode 300 or 301", what, took.Round(time.Millisecond))
	case !errors.As(err, &se):
		return fmt.Errorf("%s: no answer after %v: %w", what, took.Round(time.Millisecond), err)
	case se.StatusCode() != http.StatusInternalServerError || (se.ErrorCode != 300 && se.ErrorCode != 301):
		return fmt.Errorf("%s: %v after %v; want 500 with errorCode 300 or 301", what, err, took.Round(time.Millisecond))
	}
	if took > bound {
		return fmt.Errorf("%s: the error came after %v; want it within %v", what, took.Round(time.Millisecond), bound)
	}
	return nil
}

// checkMembers checks that each of nodes lists exactly the members want,
// with their names, peer and client URLs, and that they agree on the IDs.
func checkMembers(p *clustertest.Procs, nodes, want []int) error {
	ids := map[string]string{} // name -> id, as the first node listed it
	for _, i := range nodes {
		ms, err := p.Members(i)
		if err != nil {
			return err
		}
		if len(ms) != len(want) {
			return fmt.Errorf("%s lists %d members %+v; want %d", p.Proc(i).Name, len(ms), ms, len(want))
		}
		for _, j := range want {
			pr := p.Proc(j)
			k := slices.IndexFunc(ms, func(m clustertest.ProcMember) bool { return m.Name == pr.Name })
			if k < 0 {
				return fmt.Errorf("%s lists no member named %s: %+v", p.Proc(i).Name, pr.Name, ms)
			}
			m := ms[k]
			if !slices.Equal(m.ClientURLs, []string{pr.ClientURL}) || !slices.Equal(m.PeerURLs, []string{"https://" + pr.PeerAddr}) || m.ID == "" {
				return fmt.Errorf("%s lists %+v; want id, clientURLs [%s], peerURLs [https://%s]", p.Proc(i).Name, m, pr.ClientURL, pr.PeerAddr)
			}
			if id, ok := ids[m.Name]; ok && id != m.ID {
				return fmt.Errorf("%s gives %s the id %s, another node %s", p.Proc(i).Name, m.Name, m.ID, id)
			}
			ids[m.Name] = m.ID
		}
	}
	return nil
}

// firstWrite writes new keys prefix-0, prefix-1, ... through the nodes
// via, in turn, starting one attempt every 50 ms without waiting for the
// earlier ones, until one succeeds or limit passes after start. It returns
// the first acknowledged write and the time from start until it was
// acknowledged. Every attempt has its own key, so a slow attempt that
// lands later cannot overwrite the write returned. The attempts are a
// workload that measures, not a wait: polling would run them one after
// another, and one stuck on the dead leader would delay the measure.
func firstWrite(p *clustertest.Procs, via []int, prefix string, start time.Time, limit time.Duration) (clWrite, time.Duration, error) {
	const maxAttempts = 1000
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(limit))
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	type result struct {
		w    clWrite
		took time.Duration
		err  error
	}
	results := make(chan result, maxAttempts) // never blocks an attempt
	attempt := func(k int) {
		i := via[k%len(via)]
		wg.Go(func() {
			w := clWrite{key: fmt.Sprintf("%s-%d", prefix, k), value: "via-" + p.Proc(i).Name}
			w, err := clPutContext(ctx, p, i, w.key, w.value)
			results <- result{w, time.Since(start), err}
		})
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	attempt(0)
	var lastErr error
	for k := 1; ; {
		select {
		case r := <-results:
			if r.err == nil {
				return r.w, r.took, nil
			}
			if ctx.Err() == nil {
				lastErr = r.err
			}
		case <-ctx.Done():
			return clWrite{}, time.Since(start), fmt.Errorf("no write under %s succeeded within %v (%d attempts); last error: %v", prefix, limit, k, lastErr)
		case <-tick.C:
			if k < maxAttempts {
				attempt(k)
				k++
			}
		}
	}
}

// writers writes distinct keys under dir from several goroutines through
// the nodes via, in turn, and records what was acknowledged.
type writers struct {
	mu     sync.Mutex
	acked  []clWrite
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// They stop at the latest when the test ends.
func startWriters(t *testing.T, p *clustertest.Procs, dir string, n int, via func() []int) *writers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writers{cancel: cancel}
	t.Cleanup(func() { w.stop() })
	for g := range n {
		w.wg.Go(func() {
			for seq := 0; ctx.Err() == nil; seq++ {
				nodes := via()
				i := nodes[(g+seq)%len(nodes)]
				key := fmt.Sprintf("%s/g%d-%05d", dir, g, seq)
				value := fmt.Sprintf("v%d-%d", g, seq)
				rctx, rcancel := context.WithTimeout(ctx, p.RequestTimeout())
				cw, err := clPutContext(rctx, p, i, key, value)
				rcancel()
				if err != nil {
					continue // not acknowledged: may or may not be there
				}
				w.mu.Lock()
				w.acked = append(w.acked, cw)
				w.mu.Unlock()
			}
		})
	}
	return w
}

func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// stop ends the writers and returns the acknowledged writes.
func (w *writers) stop() []clWrite {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// TestClusterForm starts 3 nodes at once, each listing the others: they
// must form one cluster that every node describes alike, serve writes and
// linearizable reads through any node, deliver a follower's watch, and
// answer etcdctl's member list and the Go client's endpoint sync.
func TestClusterForm(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	all := []int{0, 1, 2}
	leader := p.Leader(t)
	f1, f2 := (leader+1)%3, (leader+2)%3

	t.Run("members", func(t *testing.T) {
		Poll(t, 10*time.Second, "3 named members on every node", func() error { return checkMembers(p, all, all) })
		for i := range 3 {
			ctx, cancel := clCtx(p)
			lead, err := p.Client(i).Leader(ctx)
			cancel()
			if err != nil || lead.Name != p.Proc(leader).Name {
				t.Errorf("GET /v2/members/leader through %s: %+v, %v; want %s", p.Proc(i).Name, lead, err, p.Proc(leader).Name)
			}
		}
	})

	t.Run("write and read through every node", func(t *testing.T) {
		for w := range 3 {
			own := mustClPut(t, p, w, fmt.Sprintf("/form/by-%s", p.Proc(w).Name), "v"+p.Proc(w).Name)
			shared := mustClPut(t, p, w, "/form/shared", "last-"+p.Proc(w).Name)
			// Read at once, through every node: a default read is
			// linearizable, so even a follower must see the write that was
			// just acknowledged elsewhere.
			for r := range 3 {
				for _, c := range []struct {
					w     clWrite
					query string
				}{{own, ""}, {shared, ""}, {shared, "quorum=true"}} {
					if err := clHas(p, r, c.w, c.query); err != nil {
						t.Errorf("right after the write through %s: %v", p.Proc(w).Name, err)
					}
				}
			}
		}
	})

	t.Run("watch on a follower", func(t *testing.T) {
		base := mustClPut(t, p, f1, "/form/watch/base", "b")
		type result struct {
			ev  *store.Event
			err error
		}
		got := make(chan result, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		go func() {
			wa := p.Client(f1).Watch("/form/watch", v2client.WatchOptions{AfterIndex: base.index, Recursive: true})
			ev, err := wa.Next(ctx)
			got <- result{ev, err}
		}()
		w := mustClPut(t, p, f2, "/form/watch/k", "watched")
		r := <-got
		if r.err != nil || r.ev.Action != "set" || r.ev.Node.Key != w.key || clValue(r.ev.Node) != w.value || r.ev.Node.ModifiedIndex != w.index {
			t.Errorf("watch on %s after a write through %s at index %d: %+v, %v", p.Proc(f1).Name, p.Proc(f2).Name, w.index, r.ev, r.err)
		}
	})

	t.Run("etcdctl member list", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, NeedBinary(t, "etcdctl"), "--endpoints", p.Proc(f1).ClientURL,
			"--ca-file", p.CAFile, "--cert-file", p.ClientCertFile, "--key-file", p.ClientKeyFile, "member", "list")
		cmd.Env = etcdctlEnv()
		b, err := cmd.CombinedOutput()
		out := string(b)
		if err != nil {
			t.Fatalf("etcdctl member list: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || strings.Count(out, "isLeader=true") != 1 {
			t.Errorf("etcdctl member list: want 3 members, one leader:\n%s", out)
		}
		for i := range 3 {
			pr := p.Proc(i)
			want := fmt.Sprintf("name=%s peerURLs=https://%s clientURLs=%s isLeader=%v", pr.Name, pr.PeerAddr, pr.ClientURL, i == leader)
			if !strings.Contains(out, want) {
				t.Errorf("etcdctl member list lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("Go client endpoint sync", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		tr := &http.Transport{TLSClientConfig: p.ClientTLS}
		defer tr.CloseIdleConnections()
		c, err := client.New(client.Config{
			Endpoints:               []string{p.Proc(f2).ClientURL},
			Transport:               tr,
			HeaderTimeoutPerRequest: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		var want []string
		for i := range 3 {
			want = append(want, p.Proc(i).ClientURL)
		}
		got := slices.Sorted(slices.Values(c.Endpoints()))
		if slices.Sort(want); !slices.Equal(got, want) {
			t.Errorf("endpoints after Sync = %v; want %v", got, want)
		}
		mapi := client.NewMembersAPI(c)
		if l, err := mapi.Leader(ctx); err != nil || l == nil || l.Name != p.Proc(leader).Name {
			t.Errorf("MembersAPI.Leader = %+v, %v; want %s", l, err, p.Proc(leader).Name)
		}
		r, err := client.NewKeysAPI(c).Set(ctx, "/form/goclient", "g", nil)
		if err != nil || r.Node.Value != "g" {
			t.Errorf("Set after Sync: %+v, %v", r, err)
		}
	})
}

// TestClusterLeaderKill kills the leader of 3 nodes with SIGKILL while
// writers run: a write must succeed within 3 election timeouts, a follower's
// watch must see every acknowledged write in index order, every
// acknowledged write must be readable afterwards, and the killed node must
// restart and catch up.
func TestClusterLeaderKill(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	leader := p.Leader(t)
	survivors := []int{(leader + 1) % 3, (leader + 2) % 3}
	watcher := survivors[0]

	start := mustClPut(t, p, leader, "/kill/start", "s")
	events := watchAll(t, p, watcher, "/kill", start.index+1)
	var mu sync.Mutex
	via := []int{0, 1, 2}
	w := startWriters(t, p, "/kill", 6, func() []int { mu.Lock(); defer mu.Unlock(); return via })
	Poll(t, 20*time.Second, "50 writes before the kill", func() error {
		if n := w.count(); n < 50 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})

	killed := time.Now()
	p.Kill(leader)
	mu.Lock()
	via = survivors
	mu.Unlock()
	bound := 3 * p.ElectionTimeout()
	first, took, err := firstWrite(p, survivors, "/kill/first", killed, 10*p.ElectionTimeout())
	if err != nil {
		t.Fatalf("after SIGKILL of the leader %s: %v", p.Proc(leader).Name, err)
	}
	t.Logf("first write %v after SIGKILL of the leader %s", took.Round(time.Millisecond), p.Proc(leader).Name)
	if took > bound {
		t.Errorf("the first write after SIGKILL of the leader took %v; want at most 3 × election timeout = %v", took.Round(time.Millisecond), bound)
	}
	t.Logf("new leader: %s", p.Proc(p.Leader(t)).Name)
	before := w.count()
	Poll(t, 20*time.Second, "50 more writes after the kill", func() error {
		if n := w.count() - before; n < 50 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	acked := append(w.stop(), start, first)
	t.Logf("%d writes acknowledged", len(acked))

	for _, i := range survivors {
		if err := clHasAll(p, i, "/kill", "", acked); err != nil {
			t.Errorf("after the leader's kill: %v", err)
		}
	}

	if err := p.Restart(leader); err != nil {
		t.Fatalf("restart of the killed leader: %v", err)
	}
	latest := mustClPut(t, p, survivors[1], "/kill/latest", "after-restart")
	acked = append(acked, latest)
	Poll(t, 20*time.Second, "the restarted node to catch up", func() error {
		if err := clHas(p, leader, latest, "stale=true"); err != nil {
			return err
		}
		return clHasAll(p, leader, "/kill", "stale=true", acked)
	})
	if err := clHasAll(p, leader, "/kill", "", acked); err != nil {
		t.Errorf("linearizable read through the restarted node: %v", err)
	}

	evs, werr := events.stop(latest.index)
	if werr != nil {
		t.Errorf("watch on %s: %v", p.Proc(watcher).Name, werr)
	}
	seen := map[uint64]string{}
	for k, e := range evs {
		if k > 0 && e.ModifiedIndex <= evs[k-1].ModifiedIndex {
			t.Errorf("watch on %s: event %d has index %d after %d", p.Proc(watcher).Name, k, e.ModifiedIndex, evs[k-1].ModifiedIndex)
		}
		seen[e.ModifiedIndex] = e.Key
	}
	var missed []string
	for _, a := range acked {
		if a.index > start.index && seen[a.index] != a.key {
			missed = append(missed, fmt.Sprintf("%s@%d", a.key, a.index))
		}
	}
	if len(missed) > 0 {
		t.Errorf("watch on %s missed %d acknowledged writes, e.g. %v", p.Proc(watcher).Name, len(missed), missed[:min(5, len(missed))])
	}
}

// watcher follows every event under a prefix on one node with successive
// long polls.
type watcher struct {
	mu     sync.Mutex
	events []*store.NodeExtern
	err    error
	last   uint64
	cancel context.CancelFunc
	done   chan struct{}
}

// watchAll watches dir recursively on node i from index from on, until
// stop or the end of the test.
func watchAll(t *testing.T, p *clustertest.Procs, i int, dir string, from uint64) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { cancel(); <-w.done })
	go func() {
		defer close(w.done)
		wa := p.Client(i).Watch(dir, v2client.WatchOptions{Recursive: true})
		wa.Resume(from - 1) // the first change reported is from
		for ctx.Err() == nil {
			next := wa.WaitIndex()
			ev, err := wa.Next(ctx)
			var se *store.Error
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && !errors.As(err, &se):
				// The node is down (a restart): ask again after a pause,
				// which the end of the test cuts short.
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			case err != nil || ev.Node.ModifiedIndex < next:
				w.mu.Lock()
				w.err = fmt.Errorf("watch %s from %d: %+v, %v", dir, next, ev, err)
				w.mu.Unlock()
				return
			}
			w.mu.Lock()
			w.events = append(w.events, ev.Node)
			w.last = ev.Node.ModifiedIndex
			w.mu.Unlock()
		}
	}()
	return w
}

// stop waits up to 20 s for the watch to reach index upTo, then ends it
// and returns the events.
func (w *watcher) stop(upTo uint64) ([]*store.NodeExtern, error) {
	err := poll.Check(20*time.Second, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.err != nil || w.last >= upTo {
			return nil
		}
		return fmt.Errorf("the watch reached index %d, not %d", w.last, upTo)
	})
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events, errors.Join(w.err, err)
}

// TestCluster5Nodes2Down forms 5 nodes one by one (each joining through
// the ones before it, listed in a --peers-file), kills the leader and a follower, and checks that
// the 3 left keep accepting writes and serving linearizable reads.
func TestCluster5Nodes2Down(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 5, clustertest.ProcOptions{Sequential: true, PeersFile: true})
	all := []int{0, 1, 2, 3, 4}
	Poll(t, 10*time.Second, "5 named members on every node", func() error { return checkMembers(p, all, all) })
	leader := p.Leader(t)
	before := mustClPut(t, p, leader, "/five/before", "b")

	down := []int{leader, (leader + 1) % 5}
	var up []int
	for _, i := range all {
		if !slices.Contains(down, i) {
			up = append(up, i)
		}
	}
	killed := time.Now()
	for _, i := range down {
		p.Kill(i)
	}
	first, took, err := firstWrite(p, up, "/five/first", killed, 10*p.ElectionTimeout())
	if err != nil {
		t.Fatalf("with %s and %s killed: %v", p.Proc(down[0]).Name, p.Proc(down[1]).Name, err)
	}
	t.Logf("first write %v after killing 2 of 5 (the leader among them)", took.Round(time.Millisecond))
	ws := []clWrite{before, first}
	for _, i := range up {
		ws = append(ws, mustClPut(t, p, i, "/five/by-"+p.Proc(i).Name, "x"))
	}
	for _, i := range up {
		for _, w := range ws {
			if err := clHas(p, i, w, ""); err != nil {
				t.Errorf("with 2 of 5 down: %v", err)
			}
		}
	}
}

// TestClusterPartition cuts one node of 3 off by the peer proxies, first a
// follower (connections refused), then the leader (traffic swallowed): the
// cut-off node must refuse writes and linearizable reads with error 300 or
// 301 within the request timeout and still serve stale reads, while the
// majority keeps working; after healing, it catches up.
func TestClusterPartition(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	bound := p.RequestTimeout() + 2*time.Second // the request timeout, plus the test's own overhead
	last := mustClPut(t, p, p.Leader(t), "/part/before", "b")

	// A cut too brief for an election still closes every connection of
	// the follower, as a network blip or a peer's restart does: the
	// forwarding must not fail on a connection that died meanwhile.
	t.Run("follower-brief-cut", func(t *testing.T) {
		leader := p.Leader(t)
		f := (leader + 1) % 3
		ls, err := p.Stats(leader)
		if err != nil {
			t.Fatal(err)
		}
		mustClPut(t, p, f, "/part/brief-before", "b") // forwarded: leaves a connection to the leader
		p.Partition(f)
		p.Heal()
		Poll(t, 10*time.Second, p.Proc(f).Name+" to know the leader", func() error {
			s, err := p.Stats(f) // local: no forwarding
			if err == nil && s.LeaderInfo.Leader != ls.ID {
				err = fmt.Errorf("%s names the leader %q, not %s", p.Proc(f).Name, s.LeaderInfo.Leader, ls.ID)
			}
			return err
		})
		w, err := clPut(p, f, "/part/brief-after", "a")
		if err != nil {
			t.Errorf("the first write through %s after a brief cut: %v", p.Proc(f).Name, err)
		}
		if err == nil {
			if err := clHas(p, f, w, ""); err != nil {
				t.Errorf("a linearizable read through %s after a brief cut: %v", p.Proc(f).Name, err)
			}
		}
	})

	for _, round := range []struct {
		name      string
		leader    bool // cut the leader off, else a follower
		blackhole bool
	}{
		{"follower-refused", false, false},
		{"leader-blackholed", true, true},
	} {
		t.Run(round.name, func(t *testing.T) {
			x := p.Leader(t)
			if !round.leader {
				x = (x + 1) % 3
			}
			name := p.Proc(x).Name
			Poll(t, 10*time.Second, name+" to have the last write", func() error { return clHas(p, x, last, "stale=true") })
			if round.blackhole {
				p.Blackhole(x)
			} else {
				p.Partition(x)
			}
			defer p.Heal() // also when the round fails: the next one starts healed
			cutAt := time.Now()

			// Cut-off side: a write and a linearizable read, concurrently.
			errs := make(chan error, 2)
			for _, r := range []struct{ method, key string }{
				{http.MethodPut, "/part/isolated-" + round.name},
				{http.MethodGet, last.key},
			} {
				go func() {
					var err error
					if r.method == http.MethodPut {
						_, err = clPut(p, x, r.key, "x")
					} else {
						_, err = clGet(p, x, r.key, "")
					}
					errs <- unavailable(fmt.Sprintf("%s %s through the cut-off %s", r.method, r.key, name), err, time.Since(cutAt), bound)
				}()
			}

			// Majority side.
			var majority []int
			for i := range 3 {
				if i != x {
					majority = append(majority, i)
				}
			}
			w, took, err := firstWrite(p, majority, "/part/majority-"+round.name, cutAt, 10*p.ElectionTimeout())
			if err != nil {
				t.Fatalf("majority while %s is cut off: %v", name, err)
			}
			t.Logf("majority wrote %v after %s was cut off", took.Round(time.Millisecond), name)
			t.Logf("the majority's leader: %s", p.Proc(p.Leader(t)).Name) // never the cut-off node: Leader skips it
			for _, i := range majority {
				if err := clHas(p, i, w, ""); err != nil {
					t.Errorf("majority while %s is cut off: %v", name, err)
				}
			}

			// The cut-off node still reads its own replica.
			if err := clHas(p, x, last, "stale=true"); err != nil {
				t.Errorf("stale read on the cut-off %s: %v", name, err)
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			t.Logf("%s answered both within %v of the cut", name, time.Since(cutAt).Round(time.Millisecond))

			p.Heal()
			Poll(t, 30*time.Second, name+" to catch up after healing", func() error { return clHas(p, x, w, "stale=true") })
			Poll(t, 30*time.Second, name+" to serve linearizable reads after healing", func() error { return clHas(p, x, w, "") })
			last = mustClPut(t, p, x, "/part/healed-"+round.name, "h")
			for i := range 3 {
				if err := clHas(p, i, last, ""); err != nil {
					t.Errorf("after healing: %v", err)
				}
			}
		})
	}
	if s := p.StrayPeerConns(); len(s) > 0 {
		t.Errorf("peer connections from no node's IP (cairn dials peers without binding the --peer-bind-addr host, so partitions leak): %v", s)
	}
}

// TestClusterMembership removes a follower through DELETE /v2/members/<id>
// on another member, checks that the removed node restarted on its data
// dir does not disturb the 2 left, adds it back with an empty data dir and
// --peers, then removes it again and re-adds it the etcd 2 way (POST
// /v2/members, then start).
func TestClusterMembership(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	all := []int{0, 1, 2}
	leader := p.Leader(t)
	r, o := (leader+1)%3, (leader+2)%3
	rest := []int{leader, o}
	rname := p.Proc(r).Name
	Poll(t, 10*time.Second, "3 named members on every node", func() error { return checkMembers(p, all, all) })

	remove := func(t *testing.T) {
		t.Helper()
		st, err := p.Stats(r)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := clCtx(p)
		defer cancel()
		if err := p.Client(o).RemoveMember(ctx, st.ID); err != nil {
			t.Fatalf("DELETE /v2/members/%s (%s) through %s: %v; want 204", st.ID, rname, p.Proc(o).Name, err)
		}
		Poll(t, 10*time.Second, "2 members after the removal", func() error { return checkMembers(p, rest, rest) })
		for _, i := range rest {
			w := mustClPut(t, p, i, "/mem/after-remove", "by-"+p.Proc(i).Name)
			for _, j := range rest {
				if err := clHas(p, j, w, ""); err != nil {
					t.Errorf("after removing %s: %v", rname, err)
				}
			}
		}
		t.Logf("%s after its removal: running=%v", rname, p.Running(r))
		p.Kill(r)
	}
	rejoin := func(t *testing.T) {
		t.Helper()
		if err := p.Wipe(r); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(r, rest...); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitHealthy(r, 60*time.Second); err != nil {
			t.Fatalf("re-adding %s with an empty data dir and --peers: %v", rname, err)
		}
		Poll(t, 20*time.Second, "3 members again", func() error { return checkMembers(p, all, all) })
		w := mustClPut(t, p, r, "/mem/rejoined", "through-"+rname)
		for i := range 3 {
			if err := clHas(p, i, w, ""); err != nil {
				t.Errorf("after re-adding %s: %v", rname, err)
			}
		}
	}

	// Each step builds on the one before: stop at the first that fails.
	if !t.Run("remove", remove) {
		return
	}
	if !t.Run("removed node restarted does not disturb", func(t *testing.T) {
		// Raw HTTP: the test reads the X-Raft-Term header of each answer.
		put := func(i, k int) (term string) {
			t.Helper()
			resp, body, err := p.Do(i, http.MethodPut, "/v2/keys/mem/calm", "", fmt.Sprintf("value=%d", k))
			if err != nil || resp.StatusCode/100 != 2 {
				t.Fatalf("write %d through %s: %v %s", k, p.Proc(i).Name, clStatus(resp, err), body)
			}
			return resp.Header.Get("X-Raft-Term")
		}
		startTerm := put(leader, 0)
		// Wait for the removed node's heartbeat timeout to run out: raft
		// then either declines to campaign, as the node is not in its own
		// latest configuration (and never will on it), or campaigns; then
		// wait for 3 campaigns. Its output holds its earlier runs too.
		since := len(p.Proc(r).Output())
		if err := p.Start(r, rest...); err != nil { // its data dir is there: --peers is ignored
			t.Fatal(err)
		}
		Poll(t, 60*time.Second, "the removed "+rname+" to decline to campaign or to campaign 3 times", func() error {
			if !p.Running(r) {
				return poll.Stop(fmt.Errorf("%s exited:\n%s", rname, p.Proc(r).Tail(4<<10)))
			}
			out := p.Proc(r).Output()[since:]
			if n := strings.Count(out, "entering candidate state"); !strings.Contains(out, "not triggering a leader election") && n < 3 {
				return fmt.Errorf("%d campaigns", n)
			}
			return nil
		})
		// The others' term must not have moved: a term only grows, so a
		// write through each shows whether it ever did.
		for k, i := range rest {
			if got := put(i, k+1); got != startTerm {
				t.Errorf("raft term went from %s to %s (write through %s) while the removed %s ran", startTerm, got, p.Proc(i).Name, rname)
			}
		}
		if l, err := p.FindLeader(); err != nil || l != leader {
			t.Errorf("leader after the removed node's timeouts: %v, %v; want %s", l, err, p.Proc(leader).Name)
		}
		if err := checkMembers(p, rest, rest); err != nil {
			t.Errorf("the removed node restarted came back: %v", err)
		}
		p.Kill(r)
	}) {
		return
	}
	if !t.Run("add back with --peers", rejoin) || !t.Run("remove again", remove) {
		return
	}
	t.Run("add back with POST /v2/members", func(t *testing.T) {
		pr := p.Proc(r)
		ctx, cancel := clCtx(p)
		defer cancel()
		m, err := p.Client(o).AddMember(ctx, []string{"https://" + pr.PeerAddr})
		if err != nil || m.ID == "" || !slices.Equal(m.PeerURLs, []string{"https://" + pr.PeerAddr}) {
			t.Fatalf("POST /v2/members through %s: %+v, %v; want 201 with the new member", p.Proc(o).Name, m, err)
		}
		rejoin(t)
		// The ID the add answered (and cairn member add prints) is the
		// member's ID once it has joined.
		if st, err := p.Stats(r); err != nil || st.ID != m.ID {
			t.Errorf("%s joined as %+v, %v; want the added ID %s", pr.Name, st, err, m.ID)
		}
	})
}

// trailingLogs is how many raft entries a node keeps behind its last
// snapshot (cluster: max(1024, snapshot_count/2)). A follower that missed
// fewer catches up from the log, not by a snapshot install.
const trailingLogs = 1024

// TestClusterSnapshotCatchUp stops a follower, writes 2000 keys with
// --snapshot-count 100, waits until the leader has taken a snapshot that
// compacted away entries the follower missed, and checks that the
// follower, restarted, installs a snapshot and has every key.
func TestClusterSnapshotCatchUp(t *testing.T) {
	t.Parallel()
	// One writer: concurrent writes share raft entries (cluster/batch.go),
	// and the log must grow past what the leader keeps.
	const keys, workers = 2 * trailingLogs, 1
	p := startProcs(t, 3, clustertest.ProcOptions{SnapshotCount: 100})
	leader := p.Leader(t)
	f, o := (leader+1)%3, (leader+2)%3
	fname := p.Proc(f).Name
	// Raw HTTP: the test reads the X-Raft-Index header.
	resp, body, err := p.Do(f, http.MethodPut, "/v2/keys/snap/before", "", "value=b")
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("PUT through %s: %v %s", fname, clStatus(resp, err), body)
	}
	// The follower has applied at most this raft index when it stops.
	missedFrom, _ := strconv.ParseUint(resp.Header.Get("X-Raft-Index"), 10, 64)
	if err := p.Stop(f); err != nil {
		t.Fatalf("stop %s: %v", fname, err)
	}
	ws := make([]clWrite, keys)
	errs := make([]error, keys)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for k := g; k < keys; k += workers {
				via := []int{leader, o}[k%2]
				ws[k], errs[k] = clPutRetry(p, via, fmt.Sprintf("/snap/k%04d", k), fmt.Sprintf("v%d", k))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("writes with %s down: %v", fname, err)
	}
	// raft's file snapshot store names a snapshot <term>-<index>-<ms> in
	// <data-dir>/snapshots; the leader checks every 5 to 10 s.
	Poll(t, 30*time.Second, "a snapshot on the leader that compacts away what "+fname+" missed", func() error {
		dir := filepath.Join(p.Proc(leader).DataDir, "snapshots")
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		var last uint64
		for _, e := range ents {
			if parts := strings.Split(e.Name(), "-"); len(parts) == 3 {
				if idx, err := strconv.ParseUint(parts[1], 10, 64); err == nil {
					last = max(last, idx)
				}
			}
		}
		if last <= missedFrom+trailingLogs {
			return fmt.Errorf("latest snapshot in %s at raft index %d; want one past %d", dir, last, missedFrom+trailingLogs)
		}
		return nil
	})
	if err := p.Restart(f); err != nil {
		t.Fatalf("restart %s: %v", fname, err)
	}
	Poll(t, 60*time.Second, fmt.Sprintf("%s to have the %d keys", fname, keys), func() error { return clHasAll(p, f, "/snap", "stale=true", ws) })
	if err := clHas(p, f, ws[keys-1], ""); err != nil {
		t.Error(err)
	}
	// hashicorp/raft's message on the follower, logged once the restored
	// store (read above) is in place.
	Poll(t, 10*time.Second, fname+" to log \"Installed remote snapshot\" (it was expected to need one)", func() error {
		if !strings.Contains(p.Proc(f).Output(), "Installed remote snapshot") {
			return errors.New("not logged")
		}
		return nil
	})
}
