package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus collectors.
type metrics struct {
	apply prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "cairn", Subsystem: "raft", Name: "apply_duration_seconds",
			Help:    "Time from proposing a write to its application on this node.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.apply,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "term",
			Help: "Current raft term."}, func() float64 { return float64(n.raft.CurrentTerm()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "commit_index",
			Help: "Raft commit index."}, func() float64 { return float64(n.raft.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "applied_index",
			Help: "Raft index last applied to the store."}, func() float64 { return float64(n.fsm.applied.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "is_leader",
			Help: "1 if this node is the raft leader."}, func() float64 {
			if n.Status().State == "StateLeader" {
				return 1
			}
			return 0
		}),
	)
	return m
}

func (m *metrics) observeApply(d time.Duration) { m.apply.Observe(d.Seconds()) }
