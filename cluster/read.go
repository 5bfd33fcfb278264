package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
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
		ans, err := n.callLeader(ctx, opReadIndex, 0, nil)
		if err != nil {
			return err
		}
		var k int
		if idx, k = binary.Uvarint(ans); k <= 0 {
			return errors.New("cluster: truncated read index from the leader")
		}
	}
	return n.waitApplied(ctx, idx)
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
	if err := n.verify.do(ctx); err != nil {
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
// arrived, and one quorum round-trip serves many concurrent reads.
type verifier struct {
	check   func() error
	mu      sync.Mutex
	next    *verifyRound
	running bool
}

type verifyRound struct {
	done chan struct{}
	err  error
}

func newVerifier(check func() error) *verifier { return &verifier{check: check} }

func (v *verifier) do(ctx context.Context) error {
	v.mu.Lock()
	if v.next == nil {
		v.next = &verifyRound{done: make(chan struct{})}
	}
	rd := v.next
	if !v.running {
		v.running = true
		go v.loop()
	}
	v.mu.Unlock()
	select {
	case <-rd.done:
		return rd.err
	case <-ctx.Done():
		return ErrTimeout
	}
}

func (v *verifier) loop() {
	for {
		v.mu.Lock()
		rd := v.next
		v.next = nil
		if rd == nil {
			v.running = false
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
		rd.err = v.check()
		close(rd.done)
	}
}
