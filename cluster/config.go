package cluster

import (
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/store"
)

// Defaults of Config. They are the one source of these settings: the
// command line's defaults and every other layer that needs one refer here.
const (
	DefaultName              = "default"
	DefaultPeerAddr          = "127.0.0.1:7001"
	DefaultSnapshotCount     = 10000
	DefaultSnapshotInterval  = 5 * time.Second
	DefaultHeartbeatInterval = 100 * time.Millisecond  // etcd's
	DefaultElectionTimeout   = 1000 * time.Millisecond // etcd's
	DefaultExpiryInterval    = 500 * time.Millisecond  // etcd's SYNC
)

// RequestTimeoutFor is the default RequestTimeout of a node whose election
// timeout is electionTimeout: etcd's 5 s + 2 × election timeout, time for
// a new leader to be elected and still commit the request.
func RequestTimeoutFor(electionTimeout time.Duration) time.Duration {
	return 5*time.Second + 2*electionTimeout
}

// Config configures a Node. Zero values take the documented defaults.
type Config struct {
	// Name is this member's human name (etcd's --name).
	Name string
	// DataDir holds raft.db (stable store, and the log with log store
	// boltdb), wal/ (the log with log store wal), snapshots/ and
	// member.json.
	DataDir string
	// LogStore is where raft's log is kept: LogStoreWAL (hashicorp/raft-wal
	// in wal/: one fsync per batch of entries) or LogStoreBolt (raft-boltdb
	// in raft.db: bbolt's two per commit). A data dir keeps the store it
	// was created with: New refuses the other one. "" is the store the data
	// dir has, LogStoreWAL for a new one.
	LogStore string
	// PeerAddr is the advertised peer host:port (raft address).
	PeerAddr string
	// ClientURLs are the advertised client URLs (https://host:port).
	ClientURLs []string
	// SnapshotCount is the number of applied entries between snapshots
	// (default DefaultSnapshotCount).
	SnapshotCount uint64
	// SnapshotInterval is how often raft checks whether SnapshotCount
	// entries have accumulated (default DefaultSnapshotInterval).
	SnapshotInterval time.Duration
	// HeartbeatInterval and ElectionTimeout follow etcd's meaning
	// (defaults DefaultHeartbeatInterval and DefaultElectionTimeout).
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// ExpiryInterval is how often the leader proposes an expiry sweep when
	// something is due (default DefaultExpiryInterval).
	ExpiryInterval time.Duration
	// RequestTimeout bounds Propose, ReadBarrier, Backup and membership
	// changes (default RequestTimeoutFor(ElectionTimeout)). The HTTP API
	// uses the same bound: see Node.RequestTimeout.
	RequestTimeout time.Duration
	// HistorySize, HistoryBytes and WatchBuffer configure the key store
	// (store.Config; zero values take store's defaults). Every member must
	// use the same HistorySize and HistoryBytes for watches from a past
	// index to get the same answer on each.
	HistorySize  int
	HistoryBytes int64
	WatchBuffer  int

	// Network connects the node to its peers (peer.New in cluster/peer, or an
	// InmemHub's in tests); nil gives a network of its own, enough for a
	// single-member cluster.
	Network Network
	// Peers are peer addresses (host:port) of members to join through when
	// the data dir has no raft state; see join.go for how clusters form.
	// Ignored once the node has state.
	Peers []string
	// Discover, when set, finds the peers of a node whose data dir has no
	// raft state and that was given no Peers: New calls it once, with this
	// member's ID, before raft starts, and uses the peer addresses it
	// returns as Peers (none: this member starts a new cluster alone). Its
	// error fails New. A node with raft state never calls it. cmd's
	// bootstrap by discovery (a discovery token, DNS SRV records) sets it.
	Discover func(id uint64) ([]string, error)
	// DataDirLock is the data dir's lock when the caller took it already
	// (disk.Acquire) and keeps it until after Shutdown; nil: New takes it
	// and Shutdown releases it.
	DataDirLock *disk.Lock
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

	diskHooks *diskHooks // tests: failing raft stores, a probe (diskfull.go)
	// Tests: noticeHorizon, when set, replaces raft's CommitTimeout as how
	// long a refused commit notice is sent again; noticeAccepted learns of
	// each notice a follower accepted (commitnotice.go).
	noticeHorizon  time.Duration
	noticeAccepted func(id raft.ServerID, index uint64)
}

// The log stores of Config.LogStore.
const (
	LogStoreBolt = disk.LogStoreBolt
	LogStoreWAL  = disk.LogStoreWAL
)

// defaultLogStore is the log store of a Config that names none ("": the
// data dir's, wal for a new one); the tests set it from
// CAIRN_TEST_LOG_STORE to run every test on either.
var defaultLogStore = ""

func (c *Config) setDefaults() {
	if c.LogStore == "" {
		c.LogStore = defaultLogStore
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.ExpiryInterval == 0 {
		c.ExpiryInterval = DefaultExpiryInterval
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = RequestTimeoutFor(c.ElectionTimeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PeerAddr == "" {
		c.PeerAddr = DefaultPeerAddr
	}
}

// storeConfig is the configuration of the node's key store.
func (c *Config) storeConfig() store.Config {
	return store.Config{HistorySize: c.HistorySize, HistoryBytes: c.HistoryBytes, WatchBuffer: c.WatchBuffer}
}
