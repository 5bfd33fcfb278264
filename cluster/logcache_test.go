package cluster

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// countingStore counts the reads that reach the store and fails writes
// with failWith when set.
type countingStore struct {
	*raft.InmemStore
	reads    int
	failWith error
}

func (s *countingStore) GetLog(i uint64, l *raft.Log) error {
	s.reads++
	return s.InmemStore.GetLog(i, l)
}

func (s *countingStore) StoreLogs(logs []*raft.Log) error {
	if s.failWith != nil {
		return s.failWith
	}
	return s.InmemStore.StoreLogs(logs)
}

func entries(from, to uint64, size int) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, &raft.Log{Index: i, Term: 1, Data: make([]byte, size)})
	}
	return ls
}

func TestLogCacheServesWhatWasWritten(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s)
	if err := c.StoreLogs(entries(1, logCacheSize+10, 8)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	// The newest logCacheSize entries come from memory.
	for i := uint64(11); i <= logCacheSize+10; i++ {
		if err := c.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("GetLog(%d) = index %d, %v", i, l.Index, err)
		}
	}
	if s.reads != 0 {
		t.Fatalf("%d reads reached the store for cached entries", s.reads)
	}
	// Older ones were overwritten in the ring: read from the store.
	if err := c.GetLog(5, &l); err != nil || l.Index != 5 || s.reads != 1 {
		t.Fatalf("GetLog(5) = index %d, %v, store reads %d; want 5 from the store", l.Index, err, s.reads)
	}
}

func TestLogCacheSkipsLargeEntries(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s)
	if err := c.StoreLogs(entries(1, 1, cacheEntryMax+1)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(1, &l); err != nil || len(l.Data) != cacheEntryMax+1 || s.reads != 1 {
		t.Fatalf("GetLog(1): %d bytes, %v, store reads %d; want the entry from the store", len(l.Data), err, s.reads)
	}
}

func TestLogCacheForgetsDeletedEntries(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(s)
	if err := c.StoreLogs(entries(1, 10, 8)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRange(6, 10); err != nil { // a conflicting tail
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(8, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(8) after deleting 6-10: index %d, %v; want ErrLogNotFound", l.Index, err)
	}
}

func TestLogCacheKeepsTheStoresError(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore(), failWith: fmt.Errorf("write raft.db: %w", syscall.ENOSPC)}
	c := newLogCache(s)
	err := c.StoreLogs(entries(1, 1, 8))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("StoreLogs error %v does not match ENOSPC: the disk-full state would not see it", err)
	}
	var l raft.Log
	if err := c.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(1) after a failed write: %v; want ErrLogNotFound (nothing cached)", err)
	}
}
