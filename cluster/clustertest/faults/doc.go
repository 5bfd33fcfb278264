// Package faults is Cairn's own fault-injection suite: concurrent reads,
// writes and compare-and-swaps on a cluster of real cairn processes
// (clustertest.Procs) while a nemesis kills (SIGKILL, then a restart on the
// same data dir), pauses (SIGSTOP/SIGCONT) and partitions members, and a
// linearizability check of the recorded history with porcupine.
//
// The model is one register per key with compare-and-swap, partitioned by
// key. Every written value is unique, so a CAS on prevIndex is modelled as
// a compare on the value that was seen with that index, and a separate
// check holds that each value is only ever seen with one modifiedIndex
// (a write applied twice would get two).
//
// Invariants of the history:
//   - An operation whose outcome is unknown (a timeout, a reset connection,
//     a 5xx answer) is kept, with no return time (porcupine's infinity):
//     it may take effect at any point after its call, or never. It is never
//     counted as failed without effect. Left out: a request that never left
//     the client (a refused dial), one a member answered as not applied
//     (v2client.ErrNotApplied: no leader to propose it to), and, in the
//     check only, a read with an unknown outcome (it constrains nothing).
//   - After an unknown outcome a worker continues as a new porcupine
//     client, since its earlier request may still be in flight.
//   - After the faults stop and the cluster heals, every key is read once
//     more (linearizably) into the history, so an acknowledged write that
//     was lost makes the history illegal; LostWrites says so directly too.
//
// Check is the verdict: Ok, Illegal (with porcupine's visualization
// written to a file) or Unknown (the checker ran out of time).
package faults
