package disk

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// boltOpenTimeout bounds the wait for bbolt's own file lock. The data-dir
// lock is taken first, so only a process that is not Cairn (a bbolt tool)
// can hold it.
const boltOpenTimeout = 5 * time.Second

// LogStore is raft's log and stable store that verifies every command
// entry raft reads back (replay after a restart, apply on a follower,
// replication to followers), so that a damaged entry is neither applied
// nor shipped to others. A failure is passed to OnCorrupt and returned to
// raft as a *CorruptEntryError. The embedded BoltStore (raft.db) is raft's
// StableStore; the log is in it too (log store boltdb) or in a raft-wal
// (wal/, log store wal). Raw is the unchecked log, for tests.
type LogStore struct {
	*raftboltdb.BoltStore
	Path      string // the log's file or dir
	Kind      string // LogStoreBolt or LogStoreWAL
	OnCorrupt func(error)
	wal       *healingWAL // nil: the log is in BoltStore
}

// IsMonotonic tells raft that the wal takes no gaps (raft.MonotonicLogStore):
// raft then empties it when it installs a snapshot.
func (s *LogStore) IsMonotonic() bool { return s.wal != nil }

// RoomNeeded is the free space a data dir whose disk was full needs before
// the log is written again: MinFree, plus a whole segment with the wal,
// which allocates its next segment at once (else the first write after
// the pause fills the disk again).
func (s *LogStore) RoomNeeded() uint64 {
	if s.wal != nil {
		return MinFree + uint64(walSegmentSize)
	}
	return MinFree
}

// Raw is the log without the checks.
func (s *LogStore) Raw() raft.LogStore {
	if s.wal != nil {
		return s.wal
	}
	return s.BoltStore
}

func (s *LogStore) FirstIndex() (uint64, error)       { return s.Raw().FirstIndex() }
func (s *LogStore) LastIndex() (uint64, error)        { return s.Raw().LastIndex() }
func (s *LogStore) StoreLog(l *raft.Log) error        { return s.Raw().StoreLog(l) }
func (s *LogStore) StoreLogs(logs []*raft.Log) error  { return s.Raw().StoreLogs(logs) }
func (s *LogStore) DeleteRange(min, max uint64) error { return s.Raw().DeleteRange(min, max) }

// Close closes the log and the stable store.
func (s *LogStore) Close() error {
	var err error
	if s.wal != nil {
		err = s.wal.Close()
	}
	return errors.Join(err, s.BoltStore.Close())
}

func (s *LogStore) GetLog(index uint64, l *raft.Log) error {
	if s.wal != nil {
		// raft-wal v0.4.0 still reads entries of its tail segment that
		// were deleted from the log's head (compacted): they are gone, as
		// in raft-boltdb, so that raft sends a snapshot instead.
		if first, err := s.wal.FirstIndex(); err != nil {
			return err
		} else if index < first {
			return raft.ErrLogNotFound
		}
	}
	if err := s.Raw().GetLog(index, l); err != nil {
		return err
	}
	if _, _, err := CheckEntry(l, false); err != nil {
		err.(*CorruptEntryError).Path = s.Path
		if s.OnCorrupt != nil {
			s.OnCorrupt(err)
		}
		return err
	}
	return nil
}

// OpenLog checks raft.db at path (CheckBolt), opens it with a bound on
// bbolt's lock, and verifies its log (ScanLog) for a data dir whose newest
// snapshot is at snapIndex (0: none).
func OpenLog(path string, snapIndex uint64, onCorrupt func(error)) (*LogStore, error) {
	if err := CheckBolt(path, snapIndex > 0); err != nil {
		return nil, err
	}
	opts := *bbolt.DefaultOptions
	opts.Timeout = boltOpenTimeout
	bs, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &opts})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("disk: open %s: another process holds its lock (waited %v); stop it", path, boltOpenTimeout)
	}
	if err != nil {
		return nil, Damaged(path, "cannot be opened (%v)", err)
	}
	if err := ScanLog(bs, path, snapIndex); err != nil {
		bs.Close()
		return nil, err
	}
	return &LogStore{BoltStore: bs, Path: path, Kind: LogStoreBolt, OnCorrupt: onCorrupt}, nil
}

// OpenLogStore opens the stores of dataDir: raft.db (OpenLog) and, for log
// store wal, wal/; want is the configured log store ("": the data dir's,
// wal for a new one), which must be the data dir's (ChooseLogStore). The log is verified (ScanLog)
// for a data dir whose newest snapshot is at snapIndex.
func OpenLogStore(dataDir, want string, snapIndex uint64, onCorrupt func(error), log hclog.Logger) (*LogStore, error) {
	path := filepath.Join(dataDir, LogFile)
	s, err := OpenLog(path, snapIndex, onCorrupt)
	if err != nil {
		return nil, err
	}
	last, err := s.BoltStore.LastIndex()
	if err != nil {
		s.Close()
		return nil, Damaged(path, "cannot be read (%v)", err)
	}
	kind, err := ChooseLogStore(dataDir, want, last > 0)
	if err != nil || kind == LogStoreBolt {
		if err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	w, err := openHealingWAL(dataDir, log)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.wal, s.Kind, s.Path = w, LogStoreWAL, filepath.Join(dataDir, WALDir)
	if err := ScanLog(w, s.Path, snapIndex); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ScanLog verifies every entry of the log before raft sees it: each
// command's checksum, and that every entry after the newest snapshot (at
// snapIndex; raft replays from there, and panics on a missing one) is
// there. Entries at or below snapIndex may have gaps: raft leaves them
// when it installs a snapshot from the leader.
func ScanLog(logs raft.LogStore, path string, snapIndex uint64) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return Damaged(path, "cannot be read (%v)", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return Damaged(path, "cannot be read (%v)", err)
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
			return Damaged(path, "lacks raft log entry %d (%v): the log holds %d..%d and the newest snapshot ends at %d",
				i, err, first, last, snapIndex)
		}
		if _, saw, err = CheckEntry(&l, saw); err != nil {
			err.(*CorruptEntryError).Path = path
			return err
		}
	}
	return nil
}
