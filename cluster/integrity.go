package cluster

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// ErrLogCorrupt is matched (errors.Is) by every error about a raft log entry
// whose bytes do not match their checksum.
var ErrLogCorrupt = errors.New("cluster: corrupt raft log entry")

// CorruptEntryError is a raft log entry that failed its checksum: where it
// is, what is wrong, and (in its text) what the operator does about it.
type CorruptEntryError struct {
	Index uint64 // the entry's raft index
	Path  string // the log file (raft.db), when known
	Err   error  // what the check found
}

func (e *CorruptEntryError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	return fmt.Sprintf("cluster: raft log entry %d%s is corrupt (%v); this member applies neither it nor anything after it. "+
		"Stop its process, then either empty its data dir and add it to the cluster again as a new member "+
		"(cairn member remove ID, then start with --peers), or, when it is the only member, restore the last "+
		"backup into a new data dir (cairn snapshot restore); see docs/reliability.md", e.Index, where, e.Err)
}

func (e *CorruptEntryError) Is(target error) bool { return target == ErrLogCorrupt }
func (e *CorruptEntryError) Unwrap() error        { return e.Err }

// checkEntry verifies one log entry: a command's frame and checksum, and
// that an unframed (older) command does not follow a framed one. Entries
// raft writes itself (configuration, barriers) carry no checksum of Cairn's.
func checkEntry(l *raft.Log, sawFramed bool) (body []byte, framed bool, err error) {
	if l.Type != raft.LogCommand {
		return l.Data, sawFramed, nil
	}
	body, framed, err = verifyFrame(l.Data)
	if err == nil && !framed && sawFramed {
		err = errLegacyAfterFramed
	}
	if err != nil {
		return nil, framed, &CorruptEntryError{Index: l.Index, Err: err}
	}
	return body, framed || sawFramed, nil
}

// fault is a node's record of the corruption that stopped it. The first
// one raised wins; every raise is counted.
type fault struct {
	count atomic.Uint64
	err   atomic.Pointer[error]
	once  sync.Once
	ch    chan struct{} // closed at the first raise
}

func newFault() *fault { return &fault{ch: make(chan struct{})} }

func (f *fault) raise(err error) {
	f.count.Add(1)
	f.once.Do(func() {
		f.err.Store(&err)
		close(f.ch)
	})
}

// get is the first error raised, nil while the node is sound.
func (f *fault) get() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// checkedLogStore verifies every command entry raft reads back from the
// log (replay on a restart, apply on a follower, replication to
// followers), so a damaged entry is neither applied nor shipped to others.
// A failure is raised on the node and returned to raft as an error.
type checkedLogStore struct {
	*raftboltdb.BoltStore
	path  string
	fault *fault
}

func (s *checkedLogStore) GetLog(index uint64, l *raft.Log) error {
	if err := s.BoltStore.GetLog(index, l); err != nil {
		return err
	}
	if _, _, err := checkEntry(l, false); err != nil {
		err.(*CorruptEntryError).Path = s.path
		s.fault.raise(err)
		return err
	}
	return nil
}

// scanLog verifies every entry of the log before raft sees it: each
// command's checksum, and that every entry after the newest snapshot (at
// snapIndex; raft replays from there, and panics on a missing one) is
// there. Entries at or below snapIndex may have gaps: raft leaves them
// when it installs a snapshot from the leader.
func scanLog(logs raft.LogStore, path string, snapIndex uint64) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return damaged(path, "cannot be read (%v)", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return damaged(path, "cannot be read (%v)", err)
	}
	if last == 0 {
		return nil
	}
	if last > snapIndex && first > snapIndex+1 {
		first = snapIndex + 1 // the entries in between must be there
	}
	saw := false
	for i := first; i <= last; i++ {
		var l raft.Log
		err := logs.GetLog(i, &l)
		if errors.Is(err, raft.ErrLogNotFound) && i <= snapIndex {
			continue
		}
		if err != nil {
			return damaged(path, "lacks raft log entry %d (%v): the log holds %d..%d and the newest snapshot ends at %d",
				i, err, first, last, snapIndex)
		}
		if _, saw, err = checkEntry(&l, saw); err != nil {
			err.(*CorruptEntryError).Path = path
			return err
		}
	}
	return nil
}

// Err is nil while the node is sound, and the error that stopped it once
// it found a corrupt log entry (errors.Is(err, ErrLogCorrupt)): it then
// applies nothing more, has left raft (the other members carry on without
// it), refuses writes and linearizable reads, and /health reports the
// error. Only a restart with a repaired data dir brings it back.
func (n *Node) Err() error { return n.fault.get() }

// watchFault takes the node out of raft at the first corruption: a member
// that cannot apply the log must not lead, vote or ship entries.
func (n *Node) watchFault() {
	defer n.wg.Done()
	select {
	case <-n.stop:
		return
	case <-n.fault.ch:
	}
	n.cfg.Logger.Error("corrupt raft log: this member stopped applying and left raft; repair its data dir",
		"err", n.fault.get())
	n.stopRaft()
}

// Failed is closed when the node stops on a corrupt log entry (see Err).
// A server that cannot stop serving its local replica in every way (DNS,
// stale reads, watches) exits on it.
func (n *Node) Failed() <-chan struct{} { return n.fault.ch }
