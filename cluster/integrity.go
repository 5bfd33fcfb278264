package cluster

// Err is nil while the node is sound, and the error that stopped it once
// it found a corrupt log entry (errors.Is(err, disk.ErrLogCorrupt)): it then
// applies nothing more, has left raft (the other members carry on without
// it), refuses writes and linearizable reads, and /health reports the
// error. Only a restart with a repaired data dir brings it back.
func (n *Node) Err() error { return n.fault.Err() }

// watchFault takes the node out of raft at the first corruption: a member
// that cannot apply the log must not lead, vote or ship entries.
func (n *Node) watchFault() {
	defer n.wg.Done()
	select {
	case <-n.stop:
		return
	case <-n.fault.Done():
	}
	n.cfg.Logger.Error("corrupt raft log: this member stopped applying and left raft; repair its data dir",
		"err", n.fault.Err())
	n.stopRaft()
}

// Failed is closed when the node stops on a corrupt log entry (see Err).
// A server that cannot stop serving its local replica in every way (DNS,
// stale reads, watches) exits on it.
func (n *Node) Failed() <-chan struct{} { return n.fault.Done() }
