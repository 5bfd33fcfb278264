package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// appliedFile records the raft index and term of the last entry the FSM
// applied, so that a restarted member replays its own log up to there
// before it serves anything (issue 16): hashicorp/raft restores only the
// newest snapshot at start and applies the entries after it once a leader
// says they are committed, so a member that restarted while no leader
// could reach it answered from an old snapshot, or from nothing. Every
// entry applied is committed and in this member's log, fsynced when it was
// appended, so replaying up to the mark is safe; the mark itself is written
// after every batch applied without fsync (a process crash keeps it, a
// power cut may leave an older one, and then less is replayed).
const appliedFile = "applied"

// appliedMark is the content of appliedFile: index, term, CRC-32 of both.
type appliedMark struct{ index, term uint64 }

func (m appliedMark) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 20), m.index)
	b = binary.BigEndian.AppendUint64(b, m.term)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// readAppliedMark reads dir's mark; a missing, short or damaged file is
// no mark (a zero mark: nothing replayed).
func readAppliedMark(dir string) appliedMark {
	b, err := os.ReadFile(filepath.Join(dir, appliedFile))
	if err != nil || len(b) != 20 || crc32.ChecksumIEEE(b[:16]) != binary.BigEndian.Uint32(b[16:]) {
		return appliedMark{}
	}
	return appliedMark{index: binary.BigEndian.Uint64(b), term: binary.BigEndian.Uint64(b[8:])}
}

// appliedWriter overwrites the mark in place.
type appliedWriter struct{ f *os.File }

func openAppliedWriter(dir string) (*appliedWriter, error) {
	f, err := os.OpenFile(filepath.Join(dir, appliedFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: open %s: %w", filepath.Join(dir, appliedFile), err)
	}
	return &appliedWriter{f: f}, nil
}

// write records m; a failure (a full disk) only means less is replayed at
// the next start.
func (w *appliedWriter) write(m appliedMark) { _, _ = w.f.WriteAt(m.encode(), 0) }

func (w *appliedWriter) Close() error { return w.f.Close() }

// replayLocal applies the entries of logs after what the FSM holds (the
// snapshot raft restored) up to mark (read before raft started), as raft would once a leader
// confirmed them; raft delivers them again later and the FSM skips them.
// It returns how many entries it applied and the index the member must
// reach before its state is at least what it served before it stopped.
func (n *Node) replayLocal(logs raft.LogStore, mark appliedMark) (replayed int, target uint64, err error) {
	from := n.fsm.applied.Load() + 1
	if mark.index < from {
		return 0, mark.index, nil
	}
	var last raft.Log
	if err := logs.GetLog(mark.index, &last); err != nil || last.Term != mark.term {
		// The log does not hold what the mark names (a log rebuilt or
		// replaced since): replay nothing, wait for the leader.
		n.cfg.Logger.Warn("the local log does not hold the last entry applied before the stop; serving after the leader's catch-up instead of replaying",
			"index", mark.index, "term", mark.term, "err", err)
		return 0, mark.index, nil
	}
	batch := make([]*raft.Log, 0, 256)
	flush := func() {
		if len(batch) > 0 {
			n.fsm.ApplyBatch(batch)
			replayed += len(batch)
			batch = batch[:0]
		}
	}
	for i := from; i <= mark.index; i++ {
		l := new(raft.Log)
		if err := logs.GetLog(i, l); err != nil {
			flush()
			if errors.Is(err, raft.ErrLogNotFound) || errors.Is(err, fs.ErrNotExist) {
				n.cfg.Logger.Warn("the local log misses an entry to replay; the rest comes from the leader", "index", i)
				return replayed, mark.index, nil
			}
			return replayed, mark.index, fmt.Errorf("cluster: replay entry %d of the local log: %w", i, err)
		}
		batch = append(batch, l)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return replayed, mark.index, nil
}

// CaughtUp reports whether this member's state is at least as new as it
// was when it last stopped (what it applied before the stop is applied
// again). Until then DNS answers SERVFAIL and stale reads are refused.
func (n *Node) CaughtUp() bool { return n.fsm.applied.Load() >= n.startApplied }
