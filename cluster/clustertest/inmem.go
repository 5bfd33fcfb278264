// Package clustertest runs Cairn clusters for tests: in-process members on
// raft's in-memory transport (New), and real cairn processes on loopback
// with mutual TLS (StartProcs).
package clustertest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// Options tune New. Zero values give fast timings for tests.
type Options struct {
	HeartbeatInterval time.Duration // default 20 ms
	ElectionTimeout   time.Duration // default 400 ms
	SnapshotCount     uint64        // default 10000
	ExpiryInterval    time.Duration // default 20 ms
	// Now is every member's clock (default time.Now).
	Now func() time.Time
}

// Cluster is a set of in-process members linked by an InmemHub.
type Cluster struct {
	t    testing.TB
	opts Options
	hub  *cluster.InmemHub
	mu   sync.Mutex
	// Nodes are the members by index; a stopped member is nil.
	nodes []*cluster.Node
	dirs  []string
}

// New starts n members that each list all the others as peers, as an
// operator would, and waits until they form one cluster with a ready leader.
// Every member is stopped when the test ends.
func New(t testing.TB, n int, opts ...Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, hub: cluster.NewInmemHub(), nodes: make([]*cluster.Node, n), dirs: make([]string, n)}
	if len(opts) > 0 {
		c.opts = opts[0]
	}
	if c.opts.HeartbeatInterval == 0 {
		c.opts.HeartbeatInterval = 20 * time.Millisecond
	}
	if c.opts.ElectionTimeout == 0 {
		c.opts.ElectionTimeout = 400 * time.Millisecond
	}
	if c.opts.ExpiryInterval == 0 {
		c.opts.ExpiryInterval = 20 * time.Millisecond
	}
	base := t.TempDir()
	for i := range n {
		c.dirs[i] = filepath.Join(base, fmt.Sprintf("n%d", i))
	}
	t.Cleanup(c.stopAll)
	for i := range n {
		c.start(i)
	}
	c.WaitMembers(n)
	return c
}

// Addr is member i's peer address.
func (c *Cluster) Addr(i int) string { return fmt.Sprintf("10.0.0.%d:7001", i+1) }

func (c *Cluster) start(i int) { c.startWith(i, false) }

// RecoverAlone stops every member and restarts member i alone as a new
// one-member cluster from its data dir (Config.ForceNewCluster), as an
// operator does after losing a majority for good.
func (c *Cluster) RecoverAlone(i int) {
	c.t.Helper()
	c.stopAll()
	c.startWith(i, true)
}

func (c *Cluster) startWith(i int, forceNew bool) {
	c.t.Helper()
	var peers []string
	for j := range c.dirs {
		if j != i {
			peers = append(peers, c.Addr(j))
		}
	}
	node, err := cluster.New(cluster.Config{
		Name: fmt.Sprintf("n%d", i), DataDir: c.dirs[i], PeerAddr: c.Addr(i),
		ClientURLs:        []string{fmt.Sprintf("https://10.0.0.%d:4001", i+1)},
		HeartbeatInterval: c.opts.HeartbeatInterval, ElectionTimeout: c.opts.ElectionTimeout,
		ExpiryInterval: c.opts.ExpiryInterval, SnapshotCount: c.opts.SnapshotCount,
		SnapshotInterval: 50 * time.Millisecond, RequestTimeout: 10 * c.opts.ElectionTimeout,
		Network: c.hub.Network(c.Addr(i)), Peers: peers, Now: c.opts.Now, ForceNewCluster: forceNew,
	})
	if err != nil {
		c.t.Fatalf("start member %d: %v", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = node
	c.mu.Unlock()
}

// Node is member i, or nil while it is stopped.
func (c *Cluster) Node(i int) *cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Len is the number of member slots.
func (c *Cluster) Len() int { return len(c.dirs) }

// Leader waits for a leader that serves linearizable reads and returns its
// index.
func (c *Cluster) Leader() int {
	c.t.Helper()
	var leader int
	c.waitFor("a ready leader", func() bool {
		for i := range c.dirs {
			n := c.Node(i)
			if n == nil || n.Status().State != "StateLeader" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.ElectionTimeout)
			err := n.ReadBarrier(ctx)
			cancel()
			if err == nil {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// WaitMembers waits until every running member lists n members, all named.
func (c *Cluster) WaitMembers(n int) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("%d named members on every running member", n), func() bool {
		for i := range c.dirs {
			node := c.Node(i)
			if node == nil {
				continue
			}
			ms := node.Members()
			if len(ms) != n {
				return false
			}
			for _, m := range ms {
				if m.Name == "" {
					return false
				}
			}
		}
		return true
	})
}

// Partition cuts member i off from all others, both ways.
func (c *Cluster) Partition(i int) { c.hub.Isolate(c.Addr(i)) }

// Heal reconnects every member.
func (c *Cluster) Heal() { c.hub.Heal() }

// Stop shuts member i down, keeping its data dir.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		c.t.Errorf("stop member %d: %v", i, err)
	}
}

// Restart stops member i (if running) and starts it again from its data dir.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Stop(i)
	c.start(i)
}

// Wipe stops member i and empties its data dir, as a lost disk would.
func (c *Cluster) Wipe(i int) {
	c.t.Helper()
	c.Stop(i)
	c.dirs[i] = c.t.TempDir()
}

func (c *Cluster) stopAll() {
	// Cut every member off first: a leader stopping hands its leadership
	// over, and raft's hand-over message to a member that is stopping at
	// the same time would wait out the in-memory transport's 5 s timeout
	// (after the test ends); to an isolated one it fails at once.
	for i := range c.dirs {
		c.Partition(i)
	}
	var wg sync.WaitGroup
	for i := range c.dirs {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop(i) }()
	}
	wg.Wait()
}

func (c *Cluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	poll.Until(c.t, 20*time.Second, what, cond)
}
