package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ReadBarrier returns once a read of the local store is linearizable. On the
// leader: wait until it has applied an entry of its own term, confirm
// leadership with a quorum (one round serves every read that arrived before
// it started), then wait until the store has applied the commit index seen
// when the read began.
func (n *Node) ReadBarrier(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	commit := n.raft.CommitIndex()
	if err := n.waitReady(ctx); err != nil {
		return err
	}
	if err := n.verify.do(ctx); err != nil {
		return raftError(err)
	}
	return n.waitApplied(ctx, commit)
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

// waitApplied waits until the FSM has applied index. Entries that never reach
// the FSM (raft no-ops, barriers) cannot move the FSM's index, so after a
// short grace a barrier settles it: when it completes, everything before it
// has been applied.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	grace := time.NewTimer(2 * n.cfg.HeartbeatInterval)
	defer grace.Stop()
	select {
	case <-n.fsm.appliedCh(index):
		return nil
	case <-grace.C:
	case <-ctx.Done():
		return ErrTimeout
	}
	last := n.raft.LastIndex()
	if err := n.raft.Barrier(n.timeout(ctx)).Error(); err != nil {
		return raftError(err)
	}
	n.fsm.advance(last)
	return nil
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
