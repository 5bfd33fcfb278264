package cluster

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. Zero values take the documented defaults.
type Config struct {
	// Name is this member's human name (etcd's --name).
	Name string
	// DataDir holds raft.db (log and stable store), snapshots/ and member.json.
	DataDir string
	// PeerAddr is the advertised peer host:port (raft address).
	PeerAddr string
	// ClientURLs are the advertised client URLs (https://host:port).
	ClientURLs []string
	// SnapshotCount is the number of applied entries between snapshots
	// (default 10000).
	SnapshotCount uint64
	// SnapshotInterval is how often raft checks whether SnapshotCount
	// entries have accumulated (default 5 s).
	SnapshotInterval time.Duration
	// HeartbeatInterval and ElectionTimeout follow etcd's meaning
	// (defaults 100 ms and 1000 ms).
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// ExpiryInterval is how often the leader proposes an expiry sweep when
	// something is due (default 500 ms, as etcd's SYNC).
	ExpiryInterval time.Duration
	// RequestTimeout bounds Propose and ReadBarrier (default 5 s + 2 × election timeout).
	RequestTimeout time.Duration
	// Store configures the key store.
	HistorySize int
	WatchBuffer int

	// Network connects the node to its peers (NewTLSNetwork, or an
	// InmemHub's in tests); nil gives a network of its own, enough for a
	// single-member cluster.
	Network Network
	// Peers are peer addresses (host:port) of members to join through when
	// the data dir has no raft state; see join.go for how clusters form.
	// Ignored once the node has state.
	Peers []string
	// ForceNewCluster turns an existing data dir into a new one-member
	// cluster with all its data (etcd's --force-new-cluster): recovery when
	// a majority of members is lost for good. Ignored without raft state.
	ForceNewCluster bool
	// Now is the clock the leader stamps proposals with (default time.Now).
	Now func() time.Time
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the node's Prometheus metrics; nil registers none.
	Registry prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "default"
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = 10000
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 5 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 100 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 1000 * time.Millisecond
	}
	if c.ExpiryInterval == 0 {
		c.ExpiryInterval = 500 * time.Millisecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5*time.Second + 2*c.ElectionTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PeerAddr == "" {
		c.PeerAddr = "127.0.0.1:7001"
	}
}
