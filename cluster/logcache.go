package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest entries raft wrote in memory, so that what was
// just written is not read back from disk: the leader sends every entry it
// appended to each follower (raft reads it back per entry), and a follower
// reads each entry it appended again to apply it. With raft-wal each such
// read is a pread: ~10% of a leader's CPU at 64 writers, 7% of a
// follower's (pprof, 3 members).
//
// It is raft.LogCache without that type's one flaw here: raft.LogCache
// wraps a failed write's error with %q, which hides ENOSPC and ErrDiskFull
// from errors.Is. Entries whose data is larger than cacheEntryMax are not
// kept, which bounds the cache to logCacheSize × cacheEntryMax bytes.
type logCache struct {
	raft.LogStore

	mu   sync.RWMutex
	ring [logCacheSize]*raft.Log
}

const (
	// logCacheSize covers a few of raft's batches (MaxAppendEntries 256).
	logCacheSize  = 1024
	cacheEntryMax = 64 << 10
)

func newLogCache(s raft.LogStore) *logCache { return &logCache{LogStore: s} }

func (c *logCache) GetLog(index uint64, l *raft.Log) error {
	c.mu.RLock()
	e := c.ring[index%logCacheSize]
	c.mu.RUnlock()
	if e != nil && e.Index == index {
		*l = *e
		return nil
	}
	return c.LogStore.GetLog(index, l)
}

func (c *logCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	c.mu.Lock()
	for _, l := range logs {
		slot := &c.ring[l.Index%logCacheSize]
		if len(l.Data) > cacheEntryMax {
			*slot = nil
			continue
		}
		*slot = l
	}
	c.mu.Unlock()
	return nil
}

// DeleteRange forgets every cached entry: raft deletes the log's head after
// a snapshot and its tail on a conflict, both rare.
func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	c.ring = [logCacheSize]*raft.Log{}
	c.mu.Unlock()
	return c.LogStore.DeleteRange(lo, hi)
}

// IsMonotonic passes the store's raft.MonotonicLogStore on (the wal is).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
