package cluster

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Telling the followers of a commit that nothing follows.
//
// hashicorp/raft sends a follower the leader's commit index only with new
// entries, or, when none come, after CommitTimeout (raftconf.go: 10 ms,
// randomized up to twice that); its heartbeats carry no commit index, so
// that a follower's disk never delays them (hashicorp/raft#282). The last
// write before a pause thus reached a follower's store, its watchers and
// its DNS 10 to 20 ms after the leader had acknowledged it (cairn bench
// watch, 16 watchers over 3 members: p50 15.4 ms, etcd's 2.3 ms; etcd's
// leader sends a new commit index at once).
//
// So when the leader's FSM has applied an entry that is the last in its
// log (no entry after it would carry the news), the leader sends each
// other server of the configuration one AppendEntries of its own through
// raft's transport: its current term, no entries, PrevLogEntry and
// PrevLogTerm naming that entry, and LeaderCommitIndex its index. That is
// a message the leader's own replication could send, so raft's safety is
// untouched:
//   - a follower accepts it only if its log holds that very entry (same
//     index and term); its log then matches the leader's up to there (Log
//     Matching), and every entry up to there is committed, since the
//     leader applied it; the follower commits and applies up to it, never
//     past it (raft commits min(LeaderCommitIndex, its last index));
//   - a follower that does not hold the entry yet refuses it and changes
//     nothing (hashicorp/raft logs a warning, "failed to get previous
//     log"), and learns of the commit as before;
//   - a notice from a leader since deposed carries its old term: a member
//     that knows a newer term ignores it, and one that does not yet is
//     told something true (the entry is committed);
//   - the answer is only counted: the leader's replication state (each
//     follower's next and match index) is raft's and stays untouched.
//
// One notice per follower is in flight at a time; a later commit while one
// is waits for the next applied batch. Under a steady stream of writes no
// notice is sent: the log holds a newer entry than the one applied, or the
// write queue (batch.go) holds the next batch, and the entries on their way
// carry the commit index. (Without the queue check, heartbeats at 64
// clients, whose batches linger up to 2 ms, sent a notice per batch: 0.87x
// the rate at 1.15x the CPU.)
type commitNotice struct {
	n     *Node
	self  raft.ServerID
	proto raft.ProtocolVersion
	wake  chan struct{}
	wg    sync.WaitGroup              // the notices in flight; Shutdown waits once the network is closed
	last  atomic.Pointer[appliedMark] // the last batch applied
	sent  uint64                      // the index last announced (loop only)

	mu   sync.Mutex
	busy map[raft.ServerID]bool // a notice in flight to that server
}

func newCommitNotice(n *Node, rc *raft.Config) *commitNotice {
	return &commitNotice{n: n, self: rc.LocalID, proto: rc.ProtocolVersion,
		wake: make(chan struct{}, 1), busy: map[raft.ServerID]bool{}}
}

// applied records the FSM's last applied entry (called by the FSM after
// each batch, on every member) and wakes the loop on the leader.
func (c *commitNotice) applied(m appliedMark) {
	c.last.Store(&m)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// loop sends a notice for each lone commit until the node stops.
func (c *commitNotice) loop(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-c.wake:
		}
		m := c.last.Load()
		if m == nil || m.index <= c.sent || c.n.raft.State() != raft.Leader ||
			c.n.raft.LastIndex() != m.index || c.n.batch.queued() > 0 {
			continue // nothing new, not the leader, or a newer entry is on its way
		}
		c.sent = m.index
		c.send(*m, stop)
	}
}

// send gives every other server of the configuration the notice for m,
// each on its own goroutine, skipping any that still has one in flight.
func (c *commitNotice) send(m appliedMark, stop <-chan struct{}) {
	conf := c.n.raft.GetConfiguration()
	if conf.Error() != nil {
		return
	}
	trans := c.n.net.Transport()
	self := c.self
	req := raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{
			ProtocolVersion: c.proto,
			ID:              []byte(self),
			Addr:            trans.EncodePeer(self, trans.LocalAddr()),
		},
		Term:              c.n.raft.CurrentTerm(),
		PrevLogEntry:      m.index,
		PrevLogTerm:       m.term,
		LeaderCommitIndex: m.index,
	}
	for _, s := range conf.Configuration().Servers {
		if s.ID == self {
			continue
		}
		c.mu.Lock()
		if c.busy[s.ID] {
			c.mu.Unlock()
			continue
		}
		c.busy[s.ID] = true
		c.mu.Unlock()
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() {
				c.mu.Lock()
				delete(c.busy, s.ID)
				c.mu.Unlock()
			}()
			select {
			case <-stop:
				return
			default:
			}
			r := req // the transport may keep what it is given until it answers
			var resp raft.AppendEntriesResponse
			result := "failed"
			if err := trans.AppendEntries(s.ID, s.Address, &r, &resp); err == nil {
				result = "refused"
				if resp.Success {
					result = "accepted"
				}
			}
			c.n.metrics.commitNotices.WithLabelValues(result).Inc()
		}()
	}
}
