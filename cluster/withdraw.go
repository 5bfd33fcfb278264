package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairnkv/cairn/cluster/disk"
)

// joinState is what a node that started without raft state and with peers
// (a fresh join) did in this start, so that Withdraw can undo it.
type joinState struct {
	mu           sync.Mutex // held across each join attempt
	fresh        bool       // started without raft state, with peers
	withdrawing  bool       // Withdraw was called: no join attempt after it
	joined       bool       // a peer admitted this node
	bootstrapped bool       // this node bootstrapped the cluster of its peers
	forget       bool       // Shutdown deletes the raft state this start made
}

// attempt runs one join step unless Withdraw has begun; it reports whether
// it ran.
func (j *joinState) attempt(step func()) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.withdrawing {
		return false
	}
	step()
	return true
}

// Withdraw undoes this start's join when the caller cannot go on serving
// (a step of its start after the node's failed). A node that started
// without raft state and was admitted by a peer asks the leader to remove
// it again, so a failed start leaves no dead voter that counts against the
// quorum; Shutdown then deletes the raft state this start created (its
// member file, raft.db, snapshots), so the same command can run again once
// the cause is fixed. A node that restarted from its data dir, or
// bootstrapped, is left as it is. Call it before Shutdown.
func (n *Node) Withdraw(ctx context.Context) error {
	j := &n.join
	j.mu.Lock()
	j.withdrawing = true
	fresh, joined, bootstrapped := j.fresh, j.joined, j.bootstrapped
	j.mu.Unlock()
	if !fresh || bootstrapped {
		return nil
	}
	if !joined && !n.hasConfiguration() {
		n.setForget()
		return nil
	}
	err := n.RemoveMember(ctx, n.id)
	var me *MemberError
	if err != nil && !(errors.As(err, &me) && (me.Status == 404 || me.Status == 410)) {
		return fmt.Errorf("cluster: this member (%s) joined the cluster but could not leave it again: %w; "+
			"remove it from a healthy member with `cairn member remove %s`", hexID(n.id), err, hexID(n.id))
	}
	n.cfg.Logger.Warn("left the cluster this start joined, and forgets its raft state", "member", hexID(n.id))
	n.setForget()
	return nil
}

func (n *Node) setForget() {
	n.join.mu.Lock()
	n.join.forget = true
	n.join.mu.Unlock()
}

// forgetState deletes the raft state a withdrawn start created; the rest
// of the data dir (the development PKI, the lock) stays.
func (n *Node) forgetState() error {
	n.join.mu.Lock()
	forget := n.join.forget
	n.join.mu.Unlock()
	if !forget {
		return nil
	}
	var errs []error
	for _, name := range []string{metaFile, disk.LogFile, disk.WALDir, disk.SnapshotsDir} {
		if err := os.RemoveAll(filepath.Join(n.cfg.DataDir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: delete the raft state of a withdrawn start: %w; empty %s before starting again", err, n.cfg.DataDir)
	}
	return nil
}
