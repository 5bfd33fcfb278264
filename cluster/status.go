package cluster

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Status reports this node's view of raft. It is cheap: no raft round-trip.
func (n *Node) Status() Status {
	st := Status{
		ID:           n.id,
		Name:         n.cfg.Name,
		ClusterID:    n.ClusterID(),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.applied.Load(),
		StartTime:    n.startTime,
		DiskFull:     n.DiskFull(),
	}
	if applied := n.fsm.applied.Load(); applied < n.startApplied {
		st.CatchingUp = fmt.Sprintf("restarted and catching up: applied index %d of the %d applied before the stop", applied, n.startApplied)
	}
	if err := n.fault.Err(); err != nil {
		st.Fault = err.Error()
	}
	switch n.raft.State() {
	case raft.Leader:
		st.State = "StateLeader"
		st.LeaderID = n.id
		if ns := n.leaderSince.Load(); ns != 0 {
			st.LeaderStartTime = time.Unix(0, ns)
		}
	case raft.Candidate:
		st.State = "StateCandidate"
	default:
		st.State = "StateFollower"
		if _, lid := n.raft.LeaderWithID(); lid != "" {
			st.LeaderID, _ = strconv.ParseUint(string(lid), 16, 64)
		}
	}
	return st
}
