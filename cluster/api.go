package cluster

import "time"

// Status is a node's view of itself and of raft, for /v2/stats/self,
// headers (X-Raft-Index, X-Raft-Term) and /health.
type Status struct {
	ID        uint64 // this member's ID
	Name      string
	ClusterID uint64
	// State is etcd's spelling: "StateLeader", "StateFollower", "StateCandidate".
	State           string
	LeaderID        uint64 // 0 when there is no known leader
	Term            uint64
	CommitIndex     uint64
	AppliedIndex    uint64
	StartTime       time.Time // when this node started
	LeaderStartTime time.Time // when the current leader became leader, as far as this node knows

	// Fault is why this node stopped serving (a corrupt log entry, see
	// Node.Err); empty while it is sound.
	Fault string
	// DiskFull is why this node refuses writes for want of room ("disk
	// full: free space in <data dir>"); empty while its data dir has room.
	DiskFull string
	// CatchingUp says that this member restarted and has not yet applied
	// again everything it had applied before it stopped; empty once it has.
	CatchingUp string

	RecvAppendRequestCnt uint64
	SendAppendRequestCnt uint64
}

// Member is one member of the cluster as /v2/members shows it.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
}
