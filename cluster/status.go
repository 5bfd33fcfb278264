package cluster

import (
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Status reports this node's view of raft. It is cheap: no raft round-trip.
func (n *Node) Status() Status {
	st := Status{
		ID:           n.id,
		Name:         n.cfg.Name,
		ClusterID:    n.clusterID,
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.applied.Load(),
		StartTime:    n.startTime,
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

// Members lists the members of the raft configuration. The single-member
// cluster knows its own names and URLs; the others are filled in as they join.
func (n *Node) Members() []Member {
	me := Member{ID: n.id, Name: n.cfg.Name, PeerURLs: []string{"https://" + n.cfg.PeerAddr},
		ClientURLs: append([]string(nil), n.cfg.ClientURLs...)}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return []Member{me}
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		id, err := strconv.ParseUint(string(s.ID), 16, 64)
		if err != nil {
			continue
		}
		if id == n.id {
			out = append(out, me)
			continue
		}
		out = append(out, Member{ID: id, PeerURLs: []string{"https://" + string(s.Address)}, ClientURLs: []string{}})
	}
	if len(out) == 0 {
		out = append(out, me)
	}
	return out
}
