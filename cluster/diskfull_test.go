package cluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// fullDisk makes a node's raft log fail with ENOSPC while full is set, as
// bbolt's does on a full file system: appends need new pages and fail,
// while the term and vote (a few bytes in pages bbolt already holds)
// still persist. Its probe finds no room while full is set, and counts
// its calls: the test's clock, one tick per election timeout. Its free
// space is none while full is set, as statfs would say: a leader then
// writes its log synchronously (logCache), where a failed write is the
// disk-full handling's to deal with.
type fullDisk struct {
	full   atomic.Bool
	probes atomic.Int64
}

func (d *fullDisk) hooks(every time.Duration) *diskHooks {
	return &diskHooks{
		wrap: func(l raft.LogStore, s raft.StableStore) (raft.LogStore, raft.StableStore) {
			return failingLogs{l, d}, s
		},
		probe: func(dir string) error {
			d.probes.Add(1)
			if d.full.Load() {
				return syscall.ENOSPC
			}
			return nil
		},
		probeEvery: every,
		free: func(string) (uint64, bool, error) {
			if d.full.Load() {
				return 0, true, nil
			}
			return 1 << 40, true, nil
		},
	}
}

// waitProbes waits for k more probes: k election timeouts.
func (d *fullDisk) waitProbes(t *testing.T, k int64) {
	t.Helper()
	until := d.probes.Load() + k
	poll.Until(t, waitTimeout, "probes", func() bool { return d.probes.Load() >= until })
}

type failingLogs struct {
	raft.LogStore
	d *fullDisk
}

func (f failingLogs) StoreLog(l *raft.Log) error { return f.StoreLogs([]*raft.Log{l}) }

func (f failingLogs) StoreLogs(ls []*raft.Log) error {
	if f.d.full.Load() {
		return &os.PathError{Op: "write", Path: "raft.db", Err: syscall.ENOSPC}
	}
	return f.LogStore.StoreLogs(ls)
}

const (
	testElection    = 200 * time.Millisecond
	clusterElection = time.Second
)

// startNodeTimed is startNodeWith keeping cfg's raft timers.
func startNodeTimed(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.ExpiryInterval, cfg.SnapshotInterval = 10*time.Millisecond, 20*time.Millisecond
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	poll.Until(t, waitTimeout, cfg.Name+" ready", func() bool {
		// Each try bounded: a member that never catches up fails the
		// poll, not the package's timeout.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return n.ReadBarrier(ctx) == nil
	})
	return n
}

func put(n *Node, key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: key, Value: value})
	return err
}

// A member whose disk fills up says so (Status, metrics), refuses writes
// with ErrDiskFull and does not campaign: its term stays put over several
// election timeouts (before: a new term every timeout, 2 to 204 in 15 s).
// Once there is room again it takes writes without a restart, and nothing
// acknowledged is lost.
func TestDiskFullOneMember(t *testing.T) {
	d := &fullDisk{}
	reg := prometheus.NewRegistry()
	n := startNodeWith(t, Config{Name: "n1", DataDir: t.TempDir(), Now: newFakeClock().now,
		Registry: reg, diskHooks: d.hooks(testElection)})
	if err := put(n, "/before", "1"); err != nil {
		t.Fatal(err)
	}
	d.full.Store(true)
	err := put(n, "/lost", "x")
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write on a full disk: %v, want ErrDiskFull", err)
	}
	poll.Until(t, waitTimeout, "disk full reported", func() bool { return n.Status().DiskFull != "" })
	term := n.Status().Term
	d.waitProbes(t, 5)
	if got := n.Status().Term; got != term {
		t.Errorf("term went from %d to %d over 5 election timeouts with a full disk", term, got)
	}
	if err := put(n, "/refused", "x"); !errors.Is(err, ErrDiskFull) {
		t.Errorf("write while full: %v, want ErrDiskFull", err)
	}
	want := "disk full: free space in " + n.cfg.DataDir
	if got := n.Status().DiskFull; got != want {
		t.Errorf("Status().DiskFull = %q, want %q", got, want)
	}
	if g := gauge(t, reg, "cairn_disk_full"); g != 1 {
		t.Errorf("cairn_disk_full = %v, want 1", g)
	}
	if f := n.space.Failures("no_space"); f == 0 {
		t.Error("no failed write counted with reason no_space")
	}

	d.full.Store(false)
	poll.Until(t, waitTimeout, "a write after space is freed", func() bool { return put(n, "/after", "2") == nil })
	if n.Status().DiskFull != "" || gauge(t, reg, "cairn_disk_full") != 0 {
		t.Error("still reported full after space came back")
	}
	for key, want := range map[string]string{"/before": "1", "/after": "2"} {
		ev, err := n.Store().Get(key, false, false, time.Now())
		if err != nil || ev.Node.Value == nil || *ev.Node.Value != want {
			t.Errorf("%s after recovery: %v %v", key, ev, err)
		}
	}
	if _, err := n.Store().Get("/lost", false, false, time.Now()); err == nil {
		t.Error("the write refused for a full disk was applied")
	}
}

// In a cluster of three, a full disk on the leader or on a follower does
// not disturb the other two: they keep (or elect once) a leader and take
// writes, the term does not climb, and the full member catches up once
// there is room.
func TestDiskFullOneOfThree(t *testing.T) {
	for _, which := range []string{"leader", "follower"} {
		t.Run(which, func(t *testing.T) {
			clk := newFakeClock()
			hub := NewInmemHub()
			disks := make([]*fullDisk, 3)
			nodes := make([]*Node, 3)
			addr := func(i int) string { return "10.0.0." + itoa(i+1) + ":7001" }
			for i := range nodes {
				disks[i] = &fullDisk{}
				cfg := Config{Name: "n" + itoa(i+1), DataDir: t.TempDir(), PeerAddr: addr(i), Network: hub.Network(addr(i)),
					Now: clk.now, diskHooks: disks[i].hooks(clusterElection), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)).With("n", i),
					// Timers a loaded machine (2 shared cores, -race) keeps
					// without spurious elections, which would move the term.
					ElectionTimeout: clusterElection, HeartbeatInterval: 50 * time.Millisecond}
				if i > 0 {
					cfg.Peers = []string{addr(0)}
				}
				nodes[i] = startNodeTimed(t, cfg)
			}
			leader := -1
			poll.Until(t, waitTimeout, "three members and a leader", func() bool {
				for i, n := range nodes {
					if n.isLeader() && len(n.Members()) == 3 {
						leader = i
						return true
					}
				}
				return false
			})
			full := leader
			if which == "follower" {
				full = (leader + 1) % 3
			}
			bad := nodes[full]
			good := nodes[(full+1)%3]
			disks[full].full.Store(true)
			// The next write reaches the full member's log (as leader or
			// follower): from then on it reports the full disk.
			poll.Until(t, waitTimeout, "a write through a healthy member", func() bool { return put(good, "/k", "v1") == nil })
			poll.Until(t, waitTimeout, "disk full reported", func() bool { return bad.Status().DiskFull != "" })
			poll.Until(t, waitTimeout, "a healthy leader", func() bool {
				return nodes[(full+1)%3].isLeader() || nodes[(full+2)%3].isLeader()
			})
			term := good.Status().Term
			for i := range 3 {
				disks[full].waitProbes(t, 2)
				if err := put(good, "/k", "v"+itoa(i+2)); err != nil {
					t.Fatalf("write through a healthy member while %s's disk is full: %v", which, err)
				}
			}
			if got := good.Status().Term; got != term {
				t.Errorf("term went from %d to %d over 6 election timeouts (%v each) with a full disk on the %s", term, got, clusterElection, which)
			}
			if bad.isLeader() {
				t.Error("the member with a full disk leads")
			}
			if err := put(bad, "/k", "refused"); !errors.Is(err, ErrDiskFull) {
				t.Errorf("write on the full member: %v, want ErrDiskFull", err)
			}

			disks[full].full.Store(false)
			poll.Until(t, waitTimeout, "a write on the formerly full member", func() bool { return put(bad, "/k", "v5") == nil })
			if err := bad.ReadBarrier(context.Background()); err != nil {
				t.Fatal(err)
			}
			if ev, err := bad.Store().Get("/k", false, false, time.Now()); err != nil || *ev.Node.Value != "v5" {
				t.Errorf("/k on the recovered member: %v %v", ev, err)
			}
		})
	}
}
