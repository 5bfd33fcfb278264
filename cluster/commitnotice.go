package cluster

import (
	"sync"
	"sync/atomic"
	"time"

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
// So when the leader's FSM has applied an entry that is still the last in
// its log 1 ms later (no entry after it would carry the news; noticeGrace),
// with the write queue empty, the leader sends each other server of the
// configuration one AppendEntries of its own through raft's transport: its
// current term, no entries, PrevLogEntry and PrevLogTerm naming that
// entry, and LeaderCommitIndex its index. That is
// a message the leader's own replication could send, so raft's safety is
// untouched:
//   - a follower accepts it only if its log holds that very entry (same
//     index and term); its log then matches the leader's up to there (Log
//     Matching), and every entry up to there is committed, since the
//     leader applied it; the follower commits and applies up to it, never
//     past it (raft commits min(LeaderCommitIndex, its last index));
//   - a follower that does not hold the entry yet refuses it and changes
//     nothing (raft's "failed to get previous log", a debug record here:
//     hclog.go); it is told again until it accepts, for as long as raft's
//     commit timeout (maxNoticeWait), which then tells it anyway;
//   - a notice carries a term this member was seen to lead in (tell), so
//     one from a leader since deposed carries its old term: a member that
//     knows a newer term ignores it, and one that does not yet is told
//     something true (the entry is committed);
//   - the answer is only counted: the leader's replication state (each
//     follower's next and match index) is raft's and stays untouched.
//
// One notice per follower is in flight at a time; a later commit meanwhile
// is told once it is accepted (tell). Under a steady stream of writes no
// notice is sent: the log holds a newer entry than the one applied, or the
// write queue (batch.go) holds the next batch, and the entries on their way
// carry the commit index. (Without the queue check, heartbeats at 64
// clients, whose batches linger up to 2 ms, sent a notice per batch: 0.87x
// the rate at 1.15x the CPU.)
type commitNotice struct {
	n       *Node
	self    raft.ServerID
	proto   raft.ProtocolVersion
	horizon time.Duration // raft's CommitTimeout: how long a refused notice is sent again
	// accepted, in tests, learns of each notice a follower accepted.
	accepted func(id raft.ServerID, index uint64)
	wake     chan struct{}
	wg       sync.WaitGroup              // the notices in flight; Shutdown waits once the network is closed
	last     atomic.Pointer[appliedMark] // the last batch applied
	sent     uint64                      // the index last announced (loop only)

	mu   sync.Mutex
	busy map[raft.ServerID]bool // a notice in flight to that server
}

func newCommitNotice(n *Node, rc *raft.Config) *commitNotice {
	horizon := rc.CommitTimeout
	if n.cfg.noticeHorizon > 0 {
		horizon = n.cfg.noticeHorizon
	}
	return &commitNotice{n: n, self: rc.LocalID, proto: rc.ProtocolVersion, horizon: horizon, accepted: n.cfg.noticeAccepted,
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

// noticeGrace is how long a lone commit waits before its notice: a client
// that writes one request after another sends its next within it, and
// that write's entry carries the commit index instead. (Without it, put at
// 1 client, where each write is lone, cost 1.2x the CPU and 0.89x the
// rate: two notices per write on a 2-core machine; watchers wait for it.)
const noticeGrace = time.Millisecond

// loop sends a notice for each lone commit until the node stops.
func (c *commitNotice) loop(stop <-chan struct{}) {
	grace := time.NewTimer(time.Hour)
	grace.Stop()
	defer grace.Stop()
	for {
		select {
		case <-stop:
			return
		case <-c.wake:
		}
		if _, ok := c.lone(); !ok {
			continue
		}
		grace.Reset(noticeGrace)
		select {
		case <-stop:
			return
		case <-grace.C:
		}
		if m, ok := c.lone(); ok {
			c.sent = m.index
			c.send(m, stop)
		}
	}
}

// lone returns the last entry applied, and whether this member leads and
// that entry is new, the last in its log, and followed by no queued write:
// nothing on its way would carry its commit index.
func (c *commitNotice) lone() (appliedMark, bool) {
	m := c.last.Load()
	if m == nil || m.index <= c.sent || c.n.raft.State() != raft.Leader ||
		c.n.raft.LastIndex() != m.index || c.n.batch.queued() > 0 {
		return appliedMark{}, false
	}
	return *m, true
}

// send gives every other server of the configuration the notice for m,
// each on its own goroutine, skipping any that still has one in flight.
func (c *commitNotice) send(m appliedMark, stop <-chan struct{}) {
	conf := c.n.raft.GetConfiguration()
	if conf.Error() != nil {
		return
	}
	for _, s := range conf.Configuration().Servers {
		if s.ID == c.self {
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
			c.tell(s, m, stop)
			c.mu.Lock()
			delete(c.busy, s.ID)
			c.mu.Unlock()
		}()
	}
}

// A follower that refused a notice (it had not stored the entry yet: its
// disk is slower than the one that made the quorum) or did not answer is
// told again after 1, 2, 4, ... ms (at most maxNoticeWait apart), of the
// latest commit then, until raft's own commit timeout would have told it.
const maxNoticeWait = 8 * time.Millisecond

// tell sends s the notice for m, and again while it is refused, for as
// long as raft's commit timeout; once s accepts, it goes on with a newer
// lone commit, if one was applied meanwhile (its own notice skipped s, busy
// with this one). Each try is for the latest applied entry, and only while
// this member leads and that entry is the last in its log.
func (c *commitNotice) tell(s raft.Server, m appliedMark, stop <-chan struct{}) {
	trans := c.n.net.Transport()
	wait, giveUp := time.Millisecond, time.Now().Add(c.horizon)
	for {
		// The term this member leads in, read on both sides of the state:
		// a notice must never claim a term it does not lead, where it would
		// pass for another leader's message (and stop a candidate).
		term := c.n.raft.CurrentTerm()
		if c.n.raft.State() != raft.Leader || c.n.raft.CurrentTerm() != term {
			return
		}
		req := raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{
				ProtocolVersion: c.proto,
				ID:              []byte(c.self),
				Addr:            trans.EncodePeer(c.self, trans.LocalAddr()),
			},
			Term:              term,
			PrevLogEntry:      m.index,
			PrevLogTerm:       m.term,
			LeaderCommitIndex: m.index,
		}
		var resp raft.AppendEntriesResponse
		result := "failed"
		if err := trans.AppendEntries(s.ID, s.Address, &req, &resp); err == nil {
			result = "refused"
			if resp.Success {
				result = "accepted"
			}
		}
		c.n.metrics.commitNotices.WithLabelValues(result).Inc()
		told := m.index
		if result == "accepted" {
			if c.accepted != nil {
				c.accepted(s.ID, m.index)
			}
			wait, giveUp = time.Millisecond, time.Now().Add(c.horizon)
		} else {
			if time.Now().After(giveUp) {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, maxNoticeWait)
		}
		if latest := c.last.Load(); latest != nil && latest.index > m.index {
			m = *latest
		}
		if result == "accepted" && m.index == told {
			return // nothing newer to tell
		}
		if c.n.raft.State() != raft.Leader || c.n.raft.LastIndex() != m.index || c.n.batch.queued() > 0 {
			return // deposed, or a newer entry will carry the commit index
		}
		if result == "accepted" {
			select { // the grace of loop, for the newer commit
			case <-stop:
				return
			case <-time.After(noticeGrace):
			}
			if c.n.raft.LastIndex() != m.index || c.n.batch.queued() > 0 {
				return
			}
		}
	}
}
