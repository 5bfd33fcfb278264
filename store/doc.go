// Package store is the etcd v2 key space: a tree of keys and directories with
// the store index, createdIndex/modifiedIndex, TTLs, compare-and-swap,
// in-order keys, hidden nodes, watches with an event history, streamed
// snapshots and the /v2/stats/store counters.
//
// It is pure: no raft, no net/http, no wall clock. Every mutation takes the
// time it happens at as an argument (the raft leader's clock, carried in the
// log entry), so replicas applying the same entries end in the same state.
//
// Invariants:
//   - The store index grows by exactly one for each successful write,
//     refresh and expired node, and by nothing else; each such step adds
//     exactly one event to the history, so the event for index i is found by
//     offset.
//   - Events are immutable once created; watchers and history share them.
//   - The history keeps the longest run of newest events within both of its
//     bounds (Config.HistorySize events, Config.HistoryBytes bytes), and
//     always the newest: a function of the events applied, so replicas and
//     restored snapshots with the same bounds answer the same watches.
//   - Delivering an event never blocks: a watcher whose buffer is full is
//     closed with ErrWatcherOverflow and resumes from history, losing nothing
//     while its next index is still in the history window.
//   - Refreshes and hidden keys never reach Watch; only WatchAll, the
//     stream for in-process mirrors of the tree, receives them.
//   - A failed operation changes nothing but the failure counters.
//   - Lock order: Store.mu before watcherHub.mu.
package store
