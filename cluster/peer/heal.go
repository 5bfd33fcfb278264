package peer

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/hashicorp/raft"
)

// raftMaxPool is how many idle connections raft's transport keeps per
// peer.
const raftMaxPool = 3

// healingTransport is raft's NetworkTransport with its small RPCs (votes,
// pre-votes, heartbeats and appends, TimeoutNow) sent again when they
// failed on a pooled connection that its peer had closed: a peer that
// restarted leaves every pooled connection to it dead, and raft would
// otherwise lose one RPC per dead connection — a vote lost is an election
// round lost (issue 16: elections stalled up to 4 s after a restart). The
// retried RPCs are idempotent in raft (a vote asked twice in one term is
// granted to the same candidate; entries appended twice match). Snapshots
// (a stream) and the append pipeline are not retried. An RPC is sent again
// only after an error that says the connection was gone (EOF, reset,
// broken pipe) on a connection no dial made during the attempt, so a peer
// that is down still fails at once and a slow one is not asked twice.
type healingTransport struct {
	*raft.NetworkTransport
	n *Network
}

func (t *healingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return t.heal(target, func() error { return t.NetworkTransport.AppendEntries(id, target, args, resp) })
}

func (t *healingTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.heal(target, func() error { return t.NetworkTransport.RequestVote(id, target, args, resp) })
}

func (t *healingTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.heal(target, func() error { return t.NetworkTransport.RequestPreVote(id, target, args, resp) })
}

func (t *healingTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.heal(target, func() error { return t.NetworkTransport.TimeoutNow(id, target, args, resp) })
}

// heal runs rpc, and again (up to one more time than the pool holds
// connections) while it fails on a dead pooled connection.
func (t *healingTransport) heal(target raft.ServerAddress, rpc func() error) error {
	for attempt := 0; ; attempt++ {
		dials := t.n.raftDials(string(target))
		err := rpc()
		if err == nil || attempt == raftMaxPool || !connGone(err) ||
			t.n.raftDials(string(target)) != dials || t.IsShutdown() {
			return err
		}
		t.n.log.Debug("raft RPC failed on a pooled connection the peer had closed; sending it again", "peer", target, "err", err)
	}
}

// connGone reports whether err says the connection was closed under the
// RPC by its peer.
func connGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
