// Package cluster runs a raft node (hashicorp/raft with raft-boltdb/v2 for the
// log and stable store and raft's file snapshot store) whose state machine is
// a store.Store.
//
// Invariants:
//   - Every write reaches the store only through a committed raft entry; the
//     entry carries the proposer's clock, so replicas never read their own
//     clock while applying (TTL expiration and expiry sweeps are replicated).
//   - Propose returns only after the entry is applied on this node, so an
//     acknowledged write is fsynced on a quorum and visible to later reads here.
//   - ReadBarrier returns only when a read of the local store is linearizable:
//     leadership was confirmed by a quorum after the read began, the leader has
//     applied an entry of its own term, and the local store has applied at
//     least the commit index observed when the read began.
//   - The FSM's Apply never touches the clock, the network or the disk beyond
//     the store; an entry that fails its checksum (package disk) is never
//     applied and stops the node (Node.Err); a well-checksummed command that
//     cannot be decoded panics (a newer binary's), a business failure is the
//     Apply result.
//   - The data dir is locked, owner-only and checked (package disk) before
//     raft or bbolt read anything in it.
package cluster
