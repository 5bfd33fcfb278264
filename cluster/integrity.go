package cluster

import (
	"errors"

	"github.com/cairnkv/cairn/cluster/disk"
)

// Err is nil while the node is sound, and the error that stopped it once
// it found a corrupt log entry (errors.Is(err, disk.ErrLogCorrupt)), or its
// log failed a write it had already handed raft (logCache): it then
// applies nothing more, has left raft (the other members carry on without
// it), refuses writes and linearizable reads, and /health reports the
// error. A restart brings it back, with a repaired data dir for a corrupt
// entry.
func (n *Node) Err() error { return n.fault.Err() }

// watchFault takes the node out of raft at the first corruption or failed
// write behind replication: a member that cannot apply the log, or whose
// raft counts entries its disk does not hold, must not lead, vote or ship
// entries.
func (n *Node) watchFault() {
	defer n.wg.Done()
	select {
	case <-n.stop:
		return
	case <-n.fault.Done():
	}
	msg := "raft log write failed: this member stopped applying and left raft; restart it"
	if errors.Is(n.fault.Err(), disk.ErrLogCorrupt) {
		msg = "corrupt raft log: this member stopped applying and left raft; repair its data dir"
	}
	n.cfg.Logger.Error(msg, "err", n.fault.Err())
	n.stopRaft()
}

// Failed is closed when the node stops on a corrupt log entry (see Err).
// A server that cannot stop serving its local replica in every way (DNS,
// stale reads, watches) exits on it.
func (n *Node) Failed() <-chan struct{} { return n.fault.Done() }
