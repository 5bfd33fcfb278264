// Package disk is what keeps a member's data dir trustworthy: its on-disk
// format (format.go: a newer one is refused before anything changes, an
// older one is upgraded in place), its lock
// (one process at a time, failing fast), its modes (0700 dir, 0600 files),
// the checks of raft.db and the snapshots before bbolt and raft read them,
// the checksum frame of raft log entries with the log store that
// verifies it on every read, and its disk-full state (Space: failed writes
// classified by reason, and the probe that finds room again).
//
// Invariants: no file of a data dir reaches bbolt or raft unchecked; a
// damaged file is an error (ErrDamaged, ErrLogCorrupt) naming the file
// and what the operator does, never a panic or a fault inside a library;
// every error says how to recover (docs/reliability.md).
package disk
