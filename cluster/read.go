package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ReadBarrier returns once a read of the local store is linearizable: this
// node has applied at least the leader's commit index as it was after the
// read began, and the leader confirmed with a quorum that it still led.
// hashicorp/raft has no ReadIndex; readIndex builds one. A follower asks the
// leader for the index over the peer channel, then waits to apply it.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if err := n.fault.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	var idx uint64
	if n.isLeader() {
		var err error
		if idx, err = n.readIndex(ctx); err != nil {
			return err
		}
	} else {
		var err error
		if idx, err = n.readIdx.do(ctx, n.verifyScope()); err != nil {
			return err
		}
	}
	return n.waitApplied(ctx, idx)
}

// leaderReadIndex is a follower's round of read index: one request to the
// leader, whose answer serves every read that was waiting when it was sent
// (Node.readIdx, a verifier). It ends when the node stops, which waits for
// it.
func (n *Node) leaderReadIndex() (uint64, error) {
	ctx, cancel := context.WithTimeout(n.stopCtx, n.cfg.RequestTimeout)
	defer cancel()
	ans, err := n.callLeader(ctx, opReadIndex, 0, nil)
	if err != nil {
		return 0, err
	}
	idx, k := binary.Uvarint(ans)
	if k <= 0 {
		return 0, errors.New("cluster: truncated read index from the leader")
	}
	return idx, nil
}

// verifyScope is the node's, for its verifiers.
func (n *Node) verifyScope() verifyScope {
	return verifyScope{stop: n.stop, wg: &n.wg, raftDown: func() bool { return n.raft.State() == raft.Shutdown }}
}

// readIndex is the leader's half of a linearizable read: wait until this
// leader has applied an entry of its own term (before that its commit index
// may lag what an earlier leader committed), note the commit index, then
// confirm leadership with a quorum (one round serves every read that arrived
// before it started). The order matters (hashicorp/raft#603): the index is
// taken before the confirmation, so it covers every write acknowledged
// before the read began.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if !n.isLeader() {
		return 0, ErrNotLeader
	}
	if err := n.waitReady(ctx); err != nil {
		return 0, err
	}
	commit := n.raft.CommitIndex()
	if _, err := n.verify.do(ctx, n.verifyScope()); err != nil {
		if errors.Is(err, ErrTimeout) || errors.Is(err, ErrStopped) {
			return 0, err
		}
		return 0, raftError(err)
	}
	return commit, nil
}

func (n *Node) waitReady(ctx context.Context) error {
	for {
		n.readyMu.Lock()
		ch := n.readyCh
		n.readyMu.Unlock()
		if n.readyTerm.Load() == n.raft.CurrentTerm() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ErrTimeout
		case <-n.stop:
			return ErrStopped
		}
	}
}

// waitApplied waits until the FSM has applied index. Every index a reader
// waits for is one the FSM sees: commit indexes are taken after the leader's
// first entry of its term (a command, not a raft no-op or barrier), and
// Cairn never appends raft barriers.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	select {
	case <-n.fsm.appliedCh(index):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: this member has not applied index %d yet", ErrTimeout, index)
	case <-n.stop:
		return ErrStopped
	}
}

// verifier coalesces leadership confirmations: a caller joins the next round
// that has not started yet, so every confirmation it gets began after it
// arrived, and one quorum round-trip serves many concurrent reads. A
// follower coalesces its requests for the leader's read index the same way
// (a round's value is the index; the leader's confirmations have none).
//
// hashicorp/raft answers a VerifyLeader future only from its main loop, and
// one still queued when raft shuts down is never answered (raft sets no
// ShutdownCh on it). So the loop that runs rounds is counted in the node's
// WaitGroup and starts no round once the node's stop is closed:
// Node.Shutdown closes stop and waits for the WaitGroup before it stops
// raft, and raft, still running, answers the round in flight. Raft can also
// stop on its own (a member removed from the configuration shuts it down);
// a round queued then is never answered, and the loop, once stop is closed,
// gives up on it rather than hold Shutdown for good.
type verifier struct {
	check   func() (uint64, error)
	mu      sync.Mutex
	next    *verifyRound
	running bool
}

type verifyRound struct {
	done    chan struct{}
	waiters int // callers that joined it (tests look)
	val     uint64
	err     error
}

// verifyScope is what a verifier needs of the node that owns it.
type verifyScope struct {
	stop     <-chan struct{} // closed when the node stops
	wg       *sync.WaitGroup // the node's: Shutdown waits for it before raft stops
	raftDown func() bool     // raft has shut down (it answers nothing more)
}

// raftDownPoll is how often a loop told to stop looks whether raft has
// shut down under a round in flight: raft has no channel that says so.
const raftDownPoll = 5 * time.Millisecond

func newVerifier(check func() (uint64, error)) *verifier { return &verifier{check: check} }

// do returns the result of a round of check that starts after it is
// called, ErrTimeout when ctx ends first, or ErrStopped once the node
// stops.
func (v *verifier) do(ctx context.Context, sc verifyScope) (uint64, error) {
	v.mu.Lock()
	if !v.running {
		if stopped(sc.stop) {
			v.mu.Unlock()
			return 0, ErrStopped
		}
		v.running = true
		sc.wg.Add(1)
		go v.loop(sc)
	}
	if v.next == nil {
		v.next = &verifyRound{done: make(chan struct{})}
	}
	rd := v.next
	rd.waiters++
	v.mu.Unlock()
	select {
	case <-rd.done:
		return rd.val, rd.err
	case <-ctx.Done():
		return 0, ErrTimeout
	case <-sc.stop:
		return 0, ErrStopped
	}
}

// loop runs rounds while callers wait for one and the node runs. It looks
// at stop after wg.Add, before each round: when Shutdown's wait missed
// that Add, stop was closed before it, and no round starts.
func (v *verifier) loop(sc verifyScope) {
	defer sc.wg.Done()
	for {
		v.mu.Lock()
		rd := v.next
		v.next = nil
		if rd == nil || stopped(sc.stop) {
			v.running = false
			v.mu.Unlock()
			if rd != nil {
				rd.err = ErrStopped
				close(rd.done)
			}
			return
		}
		v.mu.Unlock()
		rd.val, rd.err = v.round(sc)
		close(rd.done)
	}
}

// round runs check. Until stop is closed it waits for the answer; then
// only while raft runs, since one that has shut down will not answer (the
// goroutine waiting on it stays: raft leaves it no way out).
func (v *verifier) round(sc verifyScope) (uint64, error) {
	type result struct {
		val uint64
		err error
	}
	res := make(chan result, 1)
	go func() {
		val, err := v.check()
		res <- result{val, err}
	}()
	select {
	case r := <-res:
		return r.val, r.err
	case <-sc.stop:
	}
	tick := time.NewTicker(raftDownPoll)
	defer tick.Stop()
	for {
		select {
		case r := <-res:
			return r.val, r.err
		case <-tick.C:
			if sc.raftDown() {
				return 0, ErrStopped
			}
		}
	}
}

// stopped reports whether ch is closed.
func stopped(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
