package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// TransferLeadership hands the leadership to member to (0: the most
// up-to-date voter raft picks) and returns the new leader's ID. Asked of a
// follower, it is passed to the leader. While it runs the leader refuses
// new writes as not proposed (ErrNotLeader), so they go to the next leader
// without ambiguity; it ends within about one election timeout. to must be
// a voter other than the leader: asking for the leader itself is a no-op.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) (uint64, error) {
	ans, err := n.leaderRequest(ctx, opTransferLeader, binary.AppendUvarint(nil, to))
	if err != nil {
		return 0, err
	}
	id, k := binary.Uvarint(ans)
	if k <= 0 {
		return 0, errors.New("cluster: bad transfer-leader answer from the leader")
	}
	return id, nil
}

// transferLocal runs TransferLeadership on the leader.
func (n *Node) transferLocal(ctx context.Context, to uint64) (uint64, error) {
	if !n.isLeader() {
		return 0, ErrNotLeader
	}
	if to == n.id {
		return n.id, nil
	}
	servers, err := n.servers()
	if err != nil {
		return 0, err
	}
	voters := 0
	var target *raft.Server
	for i, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if to != 0 && s.ID == raft.ServerID(hexID(to)) {
			target = &servers[i]
		}
	}
	if to != 0 && target == nil {
		return 0, &MemberError{Status: 404, Msg: "No such voting member: " + hexID(to)}
	}
	if voters < 2 {
		return 0, &MemberError{Status: 409, Msg: "this is the only voting member: there is nobody to hand the leadership to"}
	}
	var f raft.Future
	if target != nil {
		f = n.raft.LeadershipTransferToServer(target.ID, target.Address)
	} else {
		f = n.raft.LeadershipTransfer()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Raft ends the transfer itself within an election timeout.
		return 0, fmt.Errorf("%w: the leadership transfer did not finish in time (%v)", ErrTimeout, ctx.Err())
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: leadership transfer: %w", err)
	}
	// This member stepped down; who won is known at the new leader's first
	// heartbeat.
	for {
		if _, id := n.raft.LeaderWithID(); id != "" {
			newID, _ := strconv.ParseUint(string(id), 16, 64)
			return newID, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: the leadership was handed over, but no new leader was heard of in time (%v)", ErrTimeout, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// StepDown hands the leadership over before this member stops (a planned
// restart costs no election), within bound; a member that is not the
// leader, or the only voter, has nothing to do. A failure is logged: the
// others elect a leader as they would after a crash. Shutdown calls it; a
// server calls it first, before it stops serving, so that the writes in
// flight on it finish or move to the new leader.
func (n *Node) StepDown(bound time.Duration) {
	if !n.isLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	to, err := n.transferLocal(ctx, 0)
	var me *MemberError
	switch {
	case errors.As(err, &me) && me.Status == 409:
	case err != nil:
		n.cfg.Logger.Warn("could not hand the leadership over before stopping; the others elect a leader after the election timeout", "err", err)
	default:
		n.cfg.Logger.Info("leadership handed over before stopping", "to", hexID(to), "took", time.Since(start))
	}
}
