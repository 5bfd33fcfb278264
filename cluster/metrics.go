package cluster

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus collectors.
type metrics struct {
	apply prometheus.Histogram
	// leaderChanges counts the leaders this node has seen take over, as
	// etcd's etcd_server_leader_changes_seen_total: the first leader it
	// knows of counts, and so does a leader that follows a time without
	// one, even when it is the same member again.
	leaderChanges prometheus.Counter
	// diskFullRefused counts writes refused because the data dir is full.
	diskFullRefused prometheus.Counter
	// heartbeats counts the refreshes clients sent to this member;
	// heartbeatEntries the raft entries this member, as leader, proposed
	// for refreshes (theirs and forwarded ones): one per batch holding any.
	heartbeats, heartbeatEntries prometheus.Counter
	// commitNotices counts the leader's notices of a lone commit
	// (commitnotice.go) by result: accepted, refused (the follower did
	// not hold the entry yet) or failed (no answer).
	commitNotices *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "cairn", Subsystem: "raft", Name: "apply_duration_seconds",
			Help:    "Time from proposing a write to its application on this node.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Name: "leader_changes_seen_total",
			Help: "Leader changes this member has seen (as etcd_server_leader_changes_seen_total).",
		}),
		diskFullRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Name: "disk_full_writes_refused_total",
			Help: "Writes this member refused because its data dir is full.",
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Name: "heartbeats_received_total",
			Help: "TTL refreshes (heartbeats) clients sent to this member.",
		}),
		heartbeatEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Name: "heartbeat_raft_entries_total",
			Help: "Raft entries this member proposed as leader to carry heartbeats (one per batch of coalesced writes that holds any).",
		}),
		commitNotices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "raft", Name: "commit_notices_total",
			Help: "Notices this member, as leader, sent a follower of a commit no newer entry would carry (accepted; refused: the follower did not hold the entry yet; failed: no answer).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m
	}
	registerDiskMetrics(reg, n)
	reg.MustRegister(m.apply, m.leaderChanges, m.diskFullRefused, m.heartbeats, m.heartbeatEntries, m.commitNotices,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "cairn", Name: "log_corruption_total",
			Help: "Raft log entries found corrupt (checksum mismatch) when applied or read back; any is a reason to repair this member."},
			func() float64 { return float64(n.fault.Count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "term",
			Help: "Current raft term."}, func() float64 { return float64(n.raft.CurrentTerm()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "commit_index",
			Help: "Raft commit index."}, func() float64 { return float64(n.raft.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "applied_index",
			Help: "Raft index last applied to the store."}, func() float64 { return float64(n.fsm.applied.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "is_leader",
			Help: "1 if this node is the raft leader (as etcd_server_is_leader)."}, func() float64 { return bool01(n.isLeader()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Name: "has_leader",
			Help: "1 if this member knows of a leader, 0 if not (as etcd_server_has_leader)."}, func() float64 {
			_, id := n.raft.LeaderWithID()
			return bool01(id != "")
		}),
	)
	return m
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *metrics) observeApply(d time.Duration) { m.apply.Observe(d.Seconds()) }

// watchLeader counts leader changes, and notes when this node stops being
// leader, until the node stops. Raft reports each change of the leader it
// knows (to none as well) and of its own state to an observer; a leader
// known before the observer was registered is read once at the start.
// Observations are not blocking (raft must never wait on a metric), so a
// burst of more changes than the buffer holds may be under-counted.
func (n *Node) watchLeader() {
	defer n.wg.Done()
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	var last raft.ServerID
	seen := func(id raft.ServerID) {
		if id != "" && id != last {
			n.metrics.leaderChanges.Inc()
		}
		last = id
	}
	_, id := n.raft.LeaderWithID()
	seen(id)
	state := n.raft.State()
	for {
		select {
		case <-n.stop:
			return
		case o := <-ch:
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				seen(d.LeaderID)
			case raft.RaftState:
				// A leader that steps down has heard from no other leader
				// lately (LastContact counts a leader's messages to this
				// member as a follower): callLeader's "no leader" counts
				// from the moment it stopped leading.
				if state == raft.Leader && d != raft.Leader {
					n.leaderLost.Store(time.Now().UnixNano())
				}
				state = d
			}
		}
	}
}
