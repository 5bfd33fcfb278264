package v2http

import (
	"context"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/store"
)

// Cluster is what the handler needs from the raft node. cluster.Node
// implements it.
type Cluster interface {
	// Store is the local replica: reads after ReadBarrier, stale reads and
	// watches are served from it.
	Store() *store.Store
	// Propose commits a write through raft (the leader stamps the time) and
	// returns the applied event. An error of type *store.Error is the
	// store's verdict and goes to the client as is; any other error is a
	// raft or timeout problem, answered with etcd error 300 (HTTP 500) whose
	// cause is the error text.
	Propose(ctx context.Context, r *store.Request) (*store.Event, error)
	// ReadBarrier returns once a linearizable read may be served from the
	// local store. An error is answered with etcd error 300.
	ReadBarrier(ctx context.Context) error
	// Status is the node's view of itself and of raft.
	Status() cluster.Status
	// Members is the current membership.
	Members() []cluster.Member
}

// MemberAdmin is implemented by a Cluster that can change its membership.
// Without it, POST, PUT and DELETE on /v2/members answer 501.
//
// An error returned by these methods that has a method StatusCode() int is
// the client's fault and is answered with that status: 404 (no such member;
// message "No such member: <id>"), 410 (member permanently removed; message
// "Member permanently removed: <id>"), 409 (ID or peer URL already exists)
// or 400, the last two with the error text as message. Any other error is a
// 500 "Internal Server Error", as in etcd.
type MemberAdmin interface {
	// AddMember proposes a new member with the given peer URLs (https,
	// host:port, sorted, validated) and returns it; it has no name and no
	// client URLs until it starts.
	AddMember(ctx context.Context, peerURLs []string) (cluster.Member, error)
	// UpdateMember replaces the peer URLs of member id.
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) error
	// RemoveMember removes member id from the cluster.
	RemoveMember(ctx context.Context, id uint64) error
}

// LeaderStatser is implemented by a Cluster that measures its followers
// (*cluster.Node does). Without it, /v2/stats/leader on the leader lists no
// followers.
//
// LeaderStats reports ok=false when this node is not the leader (also when
// there is no leader); /v2/stats/leader then answers 403 "not current
// leader", as etcd 2.x. Otherwise followers holds one entry per other
// member, keyed by member ID, and the leader is this node (Status().ID).
// The map is only read, and not kept, by the handler.
type LeaderStatser interface {
	LeaderStats() (followers map[uint64]cluster.FollowerStats, ok bool)
}
