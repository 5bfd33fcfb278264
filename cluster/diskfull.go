package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/cluster/disk"
)

// A full data dir. Left to itself, hashicorp/raft turns it into election
// churn: a leader that cannot store an entry steps down, campaigns again
// after a heartbeat timeout (its term and vote are a few bytes in pages
// bbolt already holds, so they still persist), wins, fails its first
// entry and steps down again, a new term per round (measured: term 3 to
// 23 in 15 s on one idle member, 154 log lines). Instead, the first write that fails for want
// of room (ENOSPC, EDQUOT, EFBIG) makes the member:
//
//   - stop campaigning and snapshotting (raft's timeouts and snapshot
//     threshold raised through ReloadConfig) and refuse raft appends
//     without touching the disk (a leader steps down at the first), so
//     the healthy members keep or elect a leader and keep their quorum;
//   - refuse writes with ErrDiskFull naming the member and the dir, and
//     report it in Status (and so /health) and in metrics;
//   - log it once, then every diskFullLogEvery, instead of raft's line per
//     failed write;
//   - probe the data dir every diskProbeEvery (disk.Probe: room, and a test
//     write that a quota would refuse) and, once there is room, restore the
//     settings: it campaigns and accepts writes again, no restart.
//
// No write is acknowledged that was not stored: a failed append fails its
// proposal. What is not prevented: raft panics when it cannot persist a
// term it learns from another member (setCurrentTerm); a member that does
// not campaign only learns a new term when the others elect a leader.

// ErrDiskFull is matched (errors.Is) by the error of a write refused or
// failed because a data dir is full. The HTTP layer reports it as etcd
// error 300 (HTTP 500) with the text as cause.
var ErrDiskFull = disk.ErrFull

const (
	diskProbeEvery   = time.Second
	diskFullLogEvery = time.Minute
	// diskFullTimeout is the heartbeat and election timeout of a member
	// whose disk is full: it does not campaign.
	diskFullTimeout = 24 * time.Hour
)

// diskHooks lets tests fail the raft stores and decide the probe.
type diskHooks struct {
	// wrap goes between the bolt stores and the disk-full wrappers.
	wrap       func(raft.LogStore, raft.StableStore) (raft.LogStore, raft.StableStore)
	probe      func(dir string) error
	probeEvery time.Duration
	// free replaces disk.Free (the leader's room to write behind replication).
	free func(dir string) (uint64, bool, error)
}

// raftStores are the stores raft runs on: logs (and its BoltStore as the
// stable store) and snaps, with failed writes reported to n.space, and the
// newest entries of the log kept in memory, where the leader's writes go
// behind replication (logCache; n.lcache).
func (n *Node) raftStores(logs *disk.LogStore, snaps raft.SnapshotStore) (*logCache, raft.StableStore, raft.SnapshotStore) {
	var (
		l raft.LogStore    = logs
		s raft.StableStore = logs.BoltStore
	)
	free := disk.Free
	if h := n.cfg.diskHooks; h != nil {
		if h.wrap != nil {
			l, s = h.wrap(l, s)
		}
		if h.free != nil {
			free = h.free
		}
	}
	lc := newLogCache(spaceLogs{l, n.space})
	leads := func() bool {
		r := n.raftRef.Load()
		return r != nil && r.State() == raft.Leader
	}
	room := func() bool {
		if n.space.Full() {
			return false
		}
		b, known, err := free(n.cfg.DataDir)
		return err == nil && known && b >= writeBehindMinFree
	}
	lc.startWriter(leads, room, n.fault.Raise)
	n.lcache = lc
	return lc, spaceStable{s, n.space}, spaceSnapshots{snaps, n.space, lc.snapshotCreated}
}

// writeBehindMinFree is the room a leader's data dir must have for the
// leader to write behind replication (logCache): with less, its writes
// are synchronous, and a disk that fills up fails one of them, which the
// disk-full handling here takes care of, rather than a write behind,
// which stops the member.
const writeBehindMinFree = 256 << 20

// spaceLogs is raft's log store with every failed write reported to the
// data dir's disk-full state; while the disk is full it refuses appends
// without touching the file (a follower's leader retries them).
type spaceLogs struct {
	raft.LogStore
	space *disk.Space
}

func (s spaceLogs) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// IsMonotonic passes the store's raft.MonotonicLogStore on (the wal is).
func (s spaceLogs) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (s spaceLogs) StoreLogs(logs []*raft.Log) error {
	if err := s.space.Refuse(); err != nil {
		return err
	}
	return s.space.Failed(s.LogStore.StoreLogs(logs))
}

func (s spaceLogs) DeleteRange(lo, hi uint64) error {
	return s.space.Failed(s.LogStore.DeleteRange(lo, hi))
}

// spaceStable is raft's stable store (term, vote) with failed writes
// reported. It never refuses: raft must persist a term whenever it can.
type spaceStable struct {
	raft.StableStore
	space *disk.Space
}

func (s spaceStable) Set(k, v []byte) error { return s.space.Failed(s.StableStore.Set(k, v)) }

func (s spaceStable) SetUint64(k []byte, v uint64) error {
	return s.space.Failed(s.StableStore.SetUint64(k, v))
}

// spaceSnapshots reports a snapshot that cannot be written for want of
// room as a full disk too.
// It tells the log (created) of each snapshot raft makes or installs.
type spaceSnapshots struct {
	raft.SnapshotStore
	space   *disk.Space
	created func(index, term uint64)
}

func (s spaceSnapshots) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration,
	confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, s.space.Failed(err)
	}
	s.created(index, term)
	return spaceSink{sink, s.space}, nil
}

type spaceSink struct {
	raft.SnapshotSink
	space *disk.Space
}

func (s spaceSink) Write(b []byte) (int, error) {
	n, err := s.SnapshotSink.Write(b)
	return n, s.space.Failed(err)
}

func (s spaceSink) Close() error { return s.space.Failed(s.SnapshotSink.Close()) }

// diskFullErr is the error of a write this member refuses, nil while its
// data dir has room.
func (n *Node) diskFullErr() error {
	if !n.space.Full() {
		return nil
	}
	return fmt.Errorf("%w on member %s: free space in %s; writes resume by themselves once there is room (docs/reliability.md)",
		ErrDiskFull, n.cfg.Name, n.cfg.DataDir)
}

// DiskFull is why this member refuses writes for want of room ("disk
// full: free space in <data dir>"), empty while its data dir has room.
func (n *Node) DiskFull() string {
	if !n.space.Full() {
		return ""
	}
	return "disk full: free space in " + n.cfg.DataDir
}

// watchSpace reacts to the data dir filling up and to room coming back.
func (n *Node) watchSpace() {
	defer n.wg.Done()
	room := n.logs.RoomNeeded()
	probe := func(dir string) error { return disk.Probe(dir, room) }
	every := diskProbeEvery
	if h := n.cfg.diskHooks; h != nil {
		if h.probe != nil {
			probe = h.probe
		}
		if h.probeEvery > 0 {
			every = h.probeEvery
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var (
		saved   *raft.ReloadableConfig // the settings to restore; nil while not paused
		logged  time.Time
		started time.Time
	)
	for {
		select {
		case <-n.stop:
			return
		case <-n.space.Changed():
		case <-tick.C:
		}
		if !n.space.Full() {
			if saved != nil {
				n.resume(*saved, time.Since(started))
				saved = nil
			}
			continue
		}
		if saved == nil {
			rc := n.raft.ReloadableConfig()
			saved = &rc
			since, err := n.space.Episode()
			started, logged = since, time.Now()
			n.pause(rc, err)
			continue
		}
		if err := probe(n.cfg.DataDir); err == nil {
			n.space.Clear()
			n.resume(*saved, time.Since(started))
			saved = nil
			continue
		} else if time.Since(logged) >= diskFullLogEvery {
			logged = time.Now()
			n.cfg.Logger.Warn("disk still full: this member refuses writes and does not campaign; free space in its data dir",
				"data_dir", n.cfg.DataDir, "for", time.Since(started).Round(time.Second), "probe", err,
				"raft_lines_suppressed", n.quietRaft.Swap(0))
		}
	}
}

// pause takes a member whose disk is full out of elections and snapshots.
func (n *Node) pause(rc raft.ReloadableConfig, cause error) {
	n.cfg.Logger.Error("disk full: this member refuses writes and stopped campaigning until there is room in its data dir; "+
		"free space there (or raise the quota): it resumes by itself within a second, no restart needed",
		"data_dir", n.cfg.DataDir, "err", cause)
	// A leader steps down at its next failed append (raft does that); with
	// heartbeats this slow, its followers elect another one meanwhile.
	// (A leadership transfer here raced that election and could depose
	// the healthy leader it produced.)
	rc.HeartbeatTimeout, rc.ElectionTimeout = diskFullTimeout, diskFullTimeout
	rc.SnapshotThreshold = 1 << 62
	if err := n.raft.ReloadConfig(rc); err != nil {
		n.cfg.Logger.Error("disk full: cannot stop campaigning", "err", err)
	}
}

// resume restores raft's settings once the data dir has room again.
func (n *Node) resume(rc raft.ReloadableConfig, after time.Duration) {
	if err := n.raft.ReloadConfig(rc); err != nil {
		n.cfg.Logger.Error("disk space is back but raft's settings cannot be restored; restart this member", "err", err)
		return
	}
	n.cfg.Logger.Info("disk space is back: this member accepts writes and campaigns again",
		"data_dir", n.cfg.DataDir, "after", after.Round(time.Second), "raft_lines_suppressed", n.quietRaft.Swap(0))
}

func registerDiskMetrics(reg prometheus.Registerer, n *Node) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Name: "disk_full",
		Help: "1 while this member's data dir is full (it refuses writes and does not campaign), else 0."},
		func() float64 { return bool01(n.space.Full()) }))
	for _, r := range disk.Reasons {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "cairn", Name: "disk_write_failures_total",
			Help:        "Writes to the raft log, stable store or snapshots that failed, by reason: no_space (ENOSPC), quota (EDQUOT), file_too_large (EFBIG), other.",
			ConstLabels: prometheus.Labels{"reason": r}},
			func() float64 { return float64(n.space.Failures(r)) }))
	}
}

// quietDiskFull drops raft's log records about writes that failed for
// want of room (one per failed append or vote), counting them in
// *dropped: watchSpace logs the condition at a bounded rate instead.
type quietDiskFull struct {
	slog.Handler
	dropped *atomic.Uint64
}

func (h quietDiskFull) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		full := false
		r.Attrs(func(a slog.Attr) bool {
			if s, ok := a.Value.Any().(string); ok && strings.Contains(s, "disk full: free space in ") {
				full = true
			}
			return !full
		})
		if full {
			h.dropped.Add(1)
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietDiskFull) WithAttrs(as []slog.Attr) slog.Handler {
	return quietDiskFull{h.Handler.WithAttrs(as), h.dropped}
}

func (h quietDiskFull) WithGroup(name string) slog.Handler {
	return quietDiskFull{h.Handler.WithGroup(name), h.dropped}
}
