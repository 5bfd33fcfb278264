package disk

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// StartRaft is raft.NewRaft with its start-up failures as errors that name
// the data dir's files: a snapshot that fails raft's own CRC-64 (raft then
// tries an older one, or none), and the panic raft raises, in this
// goroutine, when the snapshot it restored and the log leave a gap (which
// OpenLog and CheckSnapshots are meant to catch first). logs and stable
// are a LogStore and its BoltStore, or wrappers of them.
func StartRaft(rc *raft.Config, f raft.FSM, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport, dataDir string) (r *raft.Raft, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, Damaged(filepath.Join(dataDir, LogFile), "does not continue the newest snapshot raft could restore (%v)", p)
		}
	}()
	r, err = raft.NewRaft(rc, f, logs, stable, snaps, trans)
	if err != nil && strings.Contains(err.Error(), "snapshot") {
		return nil, Damaged(filepath.Join(dataDir, SnapshotsDir), "holds no snapshot raft can restore (%v)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("disk: start raft: %w", err)
	}
	return r, nil
}

// Fault is a node's record of the corruption that stopped it: the first
// error raised wins, every raise is counted. LogStore.OnCorrupt and the
// FSM raise it; the node stops on Done.
type Fault struct {
	count atomic.Uint64
	err   atomic.Pointer[error]
	once  sync.Once
	ch    chan struct{} // closed at the first raise
}

func NewFault() *Fault { return &Fault{ch: make(chan struct{})} }

// Raise records err; the first one raised is the one Err returns.
func (f *Fault) Raise(err error) {
	f.count.Add(1)
	f.once.Do(func() {
		f.err.Store(&err)
		close(f.ch)
	})
}

// Err is the first error raised, nil while the node is sound.
func (f *Fault) Err() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Done is closed at the first Raise.
func (f *Fault) Done() <-chan struct{} { return f.ch }

// Count is how many errors were raised.
func (f *Fault) Count() uint64 { return f.count.Load() }
