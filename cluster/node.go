package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/store"
)

// Errors of Propose and ReadBarrier. The HTTP layer reports them as etcd
// error 300 (HTTP 500) with the text as cause.
var (
	ErrNotLeader = errors.New("cluster: this node is not the leader and cannot reach one; retry on another member")
	ErrTimeout   = errors.New("cluster: request timed out waiting for raft; check that a quorum of members is up")
	ErrStopped   = errors.New("cluster: node is shutting down")
)

// Node is one raft member serving a store.Store.
type Node struct {
	cfg       Config
	raft      *raft.Raft
	raftRef   atomic.Pointer[raft.Raft] // raft once started, for raft's own goroutines (logCache)
	fsm       *fsm
	store     *store.Store
	logs      *disk.LogStore
	lcache    *logCache  // raft's log store: logs with the newest entries in memory
	lock      *disk.Lock // nil when the caller holds it (Config.DataDirLock)
	fault     *disk.Fault
	space     *disk.Space    // disk-full state of the data dir (diskfull.go)
	quietRaft *atomic.Uint64 // raft's disk-full log lines dropped
	net       Network
	id        uint64
	clusterID uint64
	// marks records the last entry applied; startApplied is the one
	// recorded before this start, which CaughtUp compares with (applied.go).
	marks        *appliedWriter
	startApplied uint64
	startTime    time.Time

	// readyTerm is the term in which this node, as leader, has applied an
	// entry of its own (a barrier): reads wait for it.
	readyTerm   atomic.Uint64
	leaderSince atomic.Int64 // unix nanos when this node last became leader
	leaderLost  atomic.Int64 // unix nanos when this node started, or last stopped being leader
	readyMu     sync.Mutex
	readyCh     chan struct{} // closed when readyTerm catches up; replaced per term

	join joinState // a fresh join's progress, for Withdraw

	verify  *verifier // the leader's confirmations of its leadership (read.go)
	readIdx *verifier // a follower's requests for the leader's read index (read.go)
	batch   *batcher  // the leader's queue of writes (batch.go)
	notice  *commitNotice
	metrics *metrics
	lstats  leaderStats

	stop     chan struct{}
	stopCtx  context.Context // ends when stop is closed
	stopCtxC context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once

	raftStopOnce sync.Once
	raftStopped  raft.Future
}

// New opens (or creates) the data dir and starts the raft node. A data dir
// without raft state bootstraps a new single-member cluster.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("cluster: no data dir configured; set --data-dir")
	}
	netw := cfg.Network
	if netw == nil {
		netw = NewInmemHub().Network(cfg.PeerAddr)
	}
	// The lock (which makes the dir) before anything in the data dir is read.
	var lock *disk.Lock
	if cfg.DataDirLock == nil {
		var err error
		if lock, err = disk.Acquire(cfg.DataDir, cfg.Logger); err != nil {
			netw.Close()
			return nil, err
		}
	}
	started := false
	defer func() {
		if !started {
			lock.Unlock()
		}
	}()
	peers := normalizePeers(cfg.Peers, cfg.PeerAddr)
	// A member added through the API starts with the ID it was added with.
	meta, id, clusterID, err := loadOrCreateMeta(cfg.DataDir, cfg.Name, func() uint64 {
		return askAddedMemberID(netw, peers, cfg.PeerAddr, cfg.RequestTimeout, cfg.Logger)
	})
	if err != nil {
		netw.Close()
		return nil, err
	}
	space, quiet := disk.NewSpace(cfg.DataDir), new(atomic.Uint64)
	hlog := RaftLogger(slog.New(quietDiskFull{cfg.Logger.Handler(), quiet}))

	flt := disk.NewFault()
	snapIndex, err := disk.CheckSnapshots(cfg.DataDir)
	if err == nil {
		err = disk.SecureFiles(cfg.DataDir, metaFile)
	}
	if err != nil {
		netw.Close()
		return nil, err
	}
	logs, err := disk.OpenLogStore(cfg.DataDir, cfg.LogStore, snapIndex, flt.Raise, hlog)
	if err != nil {
		netw.Close()
		return nil, err
	}
	snaps, err := disk.NewSnapshotStore(cfg.DataDir, hlog)
	if err != nil {
		netw.Close()
		logs.Close()
		return nil, err
	}
	trans := netw.Transport()

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(meta.ID)
	// hashicorp/raft randomizes both timeouts in [t, 2t]. Halved, a follower
	// campaigns within one election timeout of losing its leader, and a
	// failed (pre-)vote round retries within another, so a new leader is in
	// place well inside 3 × the election timeout (measured: median 1.7 s,
	// max 2.0 s over 20 leader kills at 1 s, before halving).
	rc.HeartbeatTimeout = cfg.ElectionTimeout / 2
	rc.ElectionTimeout = cfg.ElectionTimeout / 2
	rc.LeaderLeaseTimeout = cfg.ElectionTimeout / 2
	rc.CommitTimeout = cfg.HeartbeatInterval / 2
	rc.SnapshotThreshold = cfg.SnapshotCount
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = max(1024, cfg.SnapshotCount/2)
	rc.Logger = hlog

	rc.PreVoteDisabled = false // a removed or partitioned member must not depose a healthy leader

	// Group commit and commit-index propagation: raftconf.go.
	tuneRaft(rc, cfg)

	fail := func(err error) (*Node, error) {
		netw.Close()
		logs.Close()
		return nil, err
	}
	has, err := raft.HasExistingState(logs, logs.BoltStore, snaps)
	if err != nil {
		return fail(fmt.Errorf("cluster: inspect raft state: %w", err))
	}
	switch {
	case has && cfg.Discover != nil:
		cfg.Logger.Info("restarting from the data dir; the discovery settings are ignored", "data_dir", cfg.DataDir)
	case !has && cfg.Discover != nil && len(peers) == 0:
		found, err := cfg.Discover(id)
		if err != nil {
			return fail(err)
		}
		peers = normalizePeers(found, cfg.PeerAddr)
	}
	st := store.New(cfg.storeConfig())
	f := newFSM(st, flt)
	switch {
	case has && cfg.ForceNewCluster:
		// Disaster recovery: this member's log and snapshot become a new
		// one-member cluster, whatever the old configuration said.
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
		if err := raft.RecoverCluster(rc, f, logs, logs.BoltStore, snaps, trans, conf); err != nil {
			return fail(fmt.Errorf("cluster: force a new cluster from %s: %w", cfg.DataDir, err))
		}
		cfg.Logger.Warn("forced a new one-member cluster from this data dir; add the other members again with --peers and empty data dirs", "member", meta.ID)
		st = store.New(cfg.storeConfig())
		f = newFSM(st, flt)
	case has && len(peers) > 0:
		cfg.Logger.Info("restarting from the data dir; --peers is ignored", "data_dir", cfg.DataDir)
	case !has && len(peers) == 0:
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, logs, logs.BoltStore, snaps, trans, conf); err != nil {
			return fail(fmt.Errorf("cluster: bootstrap: %w", err))
		}
		cfg.Logger.Info("bootstrapped a new cluster", "member", meta.ID, "cluster", meta.ClusterID)
	}

	n := &Node{
		cfg: cfg, fsm: f, store: st, logs: logs, lock: lock, fault: flt, net: netw,
		space: space, quietRaft: quiet,
		id: id, clusterID: clusterID, startTime: time.Now(),
		readyCh: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	n.stopCtx, n.stopCtxC = context.WithCancel(context.Background())
	mark := readAppliedMark(cfg.DataDir)
	if n.marks, err = openAppliedWriter(cfg.DataDir); err != nil {
		return fail(err)
	}
	n.notice = newCommitNotice(n, rc)
	f.mark = func(m appliedMark) {
		n.marks.write(m)
		n.notice.applied(m)
	}
	rlogs, rstable, rsnaps := n.raftStores(logs, snaps)
	f.waitDurable = rlogs.waitDurable
	r, err := disk.StartRaft(rc, f, rlogs, rstable, rsnaps, durableTransport{trans, &rlogs.durable, &rlogs.capped}, cfg.DataDir)
	if err != nil {
		rlogs.close()
		n.marks.Close()
		return fail(err)
	}
	n.raft = r
	n.raftRef.Store(r)
	// Before anything is served: what this member applied before it
	// stopped, from its own log (applied.go).
	replayed, target, err := n.replayLocal(rlogs, mark)
	n.startApplied = target
	if err != nil {
		r.Shutdown().Error()
		rlogs.close()
		n.marks.Close()
		return fail(err)
	}
	if replayed > 0 {
		cfg.Logger.Info("replayed the local log up to the last entry applied before the stop", "entries", replayed, "index", target)
	}
	netw.Serve(n.handle)
	n.verify = newVerifier(func() (uint64, error) { return 0, r.VerifyLeader().Error() })
	n.readIdx = newVerifier(n.leaderReadIndex)
	n.metrics = newMetrics(cfg.Registry, n)
	n.batch = newBatcher(n)
	n.wg.Add(8)
	go func() { defer n.wg.Done(); n.batch.run(n.stop) }()
	go func() { defer n.wg.Done(); n.notice.loop(n.stop) }()
	go n.watchFault()
	go n.watchSpace()
	go n.run()
	n.leaderLost.Store(time.Now().UnixNano())
	go n.watchLeader()
	go n.probeFollowers()
	if !has && len(peers) > 0 {
		n.join.fresh = true
		go n.joinLoop(peers)
	} else {
		go func() { defer n.wg.Done(); n.announceLoop() }()
	}
	started = true
	return n, nil
}

// Store is the local replica's key store (for local reads and watches).
func (n *Node) Store() *store.Store { return n.store }

// RequestTimeout is how long Propose, ReadBarrier and Backup wait at most
// (Config.RequestTimeout with its default filled in). v2http bounds the
// requests it serves from this node by it.
func (n *Node) RequestTimeout() time.Duration { return n.cfg.RequestTimeout }

// ID is this member's ID.
func (n *Node) ID() uint64 { return n.id }

// ClusterID is the cluster's ID: the one carried by the first member entry
// of the cluster (a founding member's), once applied here; until then this
// member's own.
func (n *Node) ClusterID() uint64 {
	if id := n.fsm.clusterID.Load(); id != 0 {
		return id
	}
	return n.clusterID
}

// Shutdown stops the node; acknowledged writes are already durable. A
// leader first hands the leadership to another voter (within two election
// timeouts, and ctx), so that a planned stop costs no election.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.stopOnce.Do(func() {
		bound := 2 * n.cfg.ElectionTimeout
		if dl, ok := ctx.Deadline(); ok {
			bound = min(bound, time.Until(dl)/2)
		}
		n.StepDown(bound)
		close(n.stop)
		n.stopCtxC()
		n.wg.Wait()
		done := make(chan error, 1)
		go func() { done <- n.stopRaft().Error() }()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("cluster: shutdown: %w", ctx.Err())
		}
		n.net.Close()
		n.notice.wg.Wait() // each ends with the network
		n.lcache.close()
		n.marks.Close()
		if cerr := n.logs.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("cluster: close raft log: %w", cerr)
		}
		if ferr := n.forgetState(); err == nil {
			err = ferr
		}
		n.lock.Unlock()
	})
	return err
}

// stopRaft shuts raft down once; every caller waits on the same future.
func (n *Node) stopRaft() raft.Future {
	n.raftStopOnce.Do(func() { n.raftStopped = n.raft.Shutdown() })
	return n.raftStopped
}

// run watches leadership and, as leader, proposes expiry sweeps.
func (n *Node) run() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.ExpiryInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.raft.LeaderCh():
		case <-tick.C:
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		n.ensureReady()
		n.maybeExpire()
	}
}

// ensureReady makes a new leader apply an entry of its own term before it
// serves linearizable reads or proposes expiry.
func (n *Node) ensureReady() {
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() == term {
		return
	}
	// A command, not raft's Barrier: followers' FSMs see it, so every index
	// a reader may wait for from now on is one their FSM advances to.
	c := command{typ: cmdNoop, now: n.leaderNow()}
	if err := n.raft.Apply(c.encode(), n.cfg.RequestTimeout).Error(); err != nil {
		n.cfg.Logger.Warn("leader's first entry failed", "term", term, "err", err)
		return
	}
	n.leaderSince.Store(time.Now().UnixNano())
	n.readyMu.Lock()
	n.readyTerm.Store(term)
	close(n.readyCh)
	n.readyCh = make(chan struct{})
	n.readyMu.Unlock()
	n.cfg.Logger.Info("leader ready", "term", term)
}

// maybeExpire proposes an expiry sweep at the leader's time when a node is due.
func (n *Node) maybeExpire() {
	next, ok := n.store.NextExpiration()
	now := n.leaderNow()
	if !ok || next.After(now) {
		return
	}
	c := command{typ: cmdExpire, now: now}
	f := n.raft.Apply(c.encode(), n.cfg.RequestTimeout)
	if err := f.Error(); err != nil {
		n.cfg.Logger.Warn("expiry proposal failed", "err", err)
	}
}

// Propose commits a write and returns its result. On a follower the write
// is forwarded to the leader and answered from the leader's result as soon
// as it commits: the follower does not wait to apply it (it learns the
// commit index only with the leader's next AppendEntries). A later
// linearizable read on this node still sees it: ReadBarrier waits for the
// leader's commit index, which covers every write the leader answered. A
// *store.Error is a business failure (nothing changed); any other error is
// a raft failure and the write may or may not have been applied.
func (n *Node) Propose(ctx context.Context, r *store.Request) (*store.Event, error) {
	select {
	case <-n.stop:
		return nil, ErrStopped
	default:
	}
	if err := n.fault.Err(); err != nil {
		return nil, err
	}
	if err := n.diskFullErr(); err != nil {
		n.metrics.diskFullRefused.Inc()
		return nil, err
	}
	if r.Refresh {
		n.metrics.heartbeats.Inc()
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	if n.isLeader() {
		ev, _, err := n.proposeWrite(ctx, r)
		if !errors.Is(err, ErrNotLeader) {
			return ev, err
		}
		// Nothing was proposed here: leadership moved on (or raft stepped
		// down after a failed disk write). Forward it as a follower would,
		// unless the disk is full now.
		if err := n.diskFullErr(); err != nil {
			n.metrics.diskFullRefused.Inc()
			return nil, err
		}
	}
	c := command{typ: cmdRequest, req: r}
	ans, err := n.callLeader(ctx, opPropose, flagBinaryEvent, c.encode())
	if err != nil {
		return nil, err
	}
	ev, _, err := decodeProposeAnswer(ans)
	return ev, err
}

// proposeLocal runs a write on the leader, stamped with its clock, and
// returns its result and raft index.
func (n *Node) proposeLocal(ctx context.Context, r *store.Request) (*store.Event, uint64, error) {
	if !n.isLeader() {
		return nil, 0, ErrNotLeader
	}
	c := command{typ: cmdRequest, now: n.leaderNow(), req: r}
	start := time.Now()
	f := n.raft.Apply(c.encode(), n.timeout(ctx))
	if err := f.Error(); err != nil {
		return nil, 0, raftError(err)
	}
	n.metrics.observeApply(time.Since(start))
	res := f.Response().(applyResult)
	if res.err != nil {
		return nil, f.Index(), res.err
	}
	return res.event, f.Index(), nil
}

func (n *Node) isLeader() bool { return n.raft.State() == raft.Leader }

// leaderNow is the time a leader stamps on an entry: its clock, but never
// before the latest time already applied, so a new leader whose clock is
// behind does not move time backwards.
func (n *Node) leaderNow() time.Time {
	now := n.cfg.Now()
	if last := n.fsm.lastNow.Load(); now.UnixNano() < last {
		return time.Unix(0, last)
	}
	return now
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	t := n.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(dl))
	}
	return max(t, time.Millisecond)
}

func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it was stored: nothing was proposed.
		return fmt.Errorf("%w (%v)", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		// The entry may still commit under the next leader: not retryable.
		return fmt.Errorf("%w: leadership was lost before the entry committed; it may or may not be applied", ErrTimeout)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrStopped
	}
	return fmt.Errorf("cluster: raft: %w", err)
}
