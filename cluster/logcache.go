package cluster

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

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
//
// # The leader writes behind replication
//
// hashicorp/raft's leader stores a batch in its log (write and fsync) before
// it sends the batch to its followers, so a write waits for two fsyncs one
// after the other: the leader's, then a follower's. etcd's leader writes its
// own log while the followers write theirs (the raft thesis, 10.2.1). The
// cache does that under raft: on the leader, StoreLogs keeps the batch in
// memory, hands it to a writer goroutine and returns, so raft sends the
// batch to the followers while the leader's fsync runs (the writer joins
// the batches that queue meanwhile into one write and one fsync).
//
// raft then counts the leader's copy in a commit before it is on disk. Two
// rules keep that from being seen by anyone:
//   - the FSM applies an entry only once this member has it on disk
//     (waitDurable): a client is answered, a watcher told and a read served
//     only from entries on the leader's disk;
//   - the raft transport caps the commit index that AppendEntries carry at
//     the leader's durable index (durableTransport): a follower applies only
//     entries on the leader's disk, as well as on its own.
//
// So an entry is applied anywhere only once a majority has it on disk: the
// leader, and the followers whose answers made the commit (a follower
// answers only after its own fsync). A leader that crashes before its fsync
// loses entries that no member applied and no client was answered for, as
// if it had crashed before sending them; the others may elect a leader
// without them.
//
// Followers write synchronously, as before: their answer says the entries
// are on disk. So does a leader whose data dir is short of room (room), so
// that a disk filling up is met by the synchronous path and its disk-full
// handling (diskfull.go). A write that fails on the writer goroutine cannot
// be taken back from raft, which counts the entries as stored: it stops the
// node as a corrupt entry does (fail, Node.Err), the member leaves raft and
// the server exits, and a restart replays what is on disk.
type logCache struct {
	raft.LogStore

	mu   sync.RWMutex
	ring [logCacheSize]*raft.Log

	// leads reports whether raft's leader loop is the caller (raft calls
	// StoreLogs from its main goroutine, where its state changes too); room
	// whether the data dir has room for writes behind replication. Nil
	// leads: every write is synchronous.
	leads func() bool
	room  func() bool
	// snap is the newest snapshot's last index and term (snapshotCreated).
	snap atomic.Pointer[[2]uint64]
	// capped counts the AppendEntries whose commit index durableTransport
	// lowered to durable.
	capped atomic.Uint64
	// fail stops the node after a failed write behind replication.
	fail func(error)

	queue    chan []*raft.Log // batches for the writer
	stop     chan struct{}    // closed by close: the writer ends
	stopOnce sync.Once
	writerWG sync.WaitGroup

	// durable is the last index on disk. dmu guards pending, err and
	// stopped, and durableCond wakes the waits on them.
	durable     atomic.Uint64
	dmu         sync.Mutex
	durableCond *sync.Cond
	pending     int   // batches handed to the writer and not yet on disk
	err         error // the writer's failure: every later call returns it
	stopped     bool
}

const (
	// logCacheSize covers a few of raft's batches (MaxAppendEntries 256).
	logCacheSize  = 1024
	cacheEntryMax = 64 << 10
	// writeBehindQueue is how many batches may wait for the writer before
	// raft's leader loop waits for it too.
	writeBehindQueue = 64
)

// errLogClosed is returned for writes after close, and by waitDurable.
var errLogClosed = errors.New("cluster: raft log closed")

// newLogCache wraps s. With leads set the leader writes behind replication
// (see logCache); start the writer with startWriter.
func newLogCache(s raft.LogStore) *logCache {
	c := &logCache{LogStore: s, stop: make(chan struct{})}
	c.durableCond = sync.NewCond(&c.dmu)
	if last, err := s.LastIndex(); err == nil {
		c.durable.Store(last)
	}
	return c
}

// startWriter enables writes behind replication: leads says whether raft's
// caller is the leader, room whether there is room for them, and fail is
// told of a write that failed on the writer.
func (c *logCache) startWriter(leads, room func() bool, fail func(error)) {
	c.leads, c.room, c.fail = leads, room, fail
	c.queue = make(chan []*raft.Log, writeBehindQueue)
	c.writerWG.Add(1)
	go c.writer()
}

func (c *logCache) GetLog(index uint64, l *raft.Log) error {
	c.mu.RLock()
	e := c.ring[index%logCacheSize]
	c.mu.RUnlock()
	if e != nil && e.Index == index {
		*l = *e
		return nil
	}
	// Not cached: it may still be on its way to the disk.
	if err := c.waitWritten(); err != nil {
		return err
	}
	return c.LogStore.GetLog(index, l)
}

// LastIndex counts the entries on their way to the disk.
func (c *logCache) LastIndex() (uint64, error) {
	if err := c.waitWritten(); err != nil {
		return 0, err
	}
	return c.LogStore.LastIndex()
}

func (c *logCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	last := logs[len(logs)-1].Index
	behind := c.leads != nil && c.leads() && c.room()
	if behind {
		if err := c.failure(); err != nil {
			return err
		}
		// Counted before it is cached: a reader that misses the cache (an
		// entry too large for it) waits for this batch to reach the disk.
		c.dmu.Lock()
		c.pending++
		c.dmu.Unlock()
	} else {
		if err := c.waitWritten(); err != nil {
			return err
		}
		if err := c.LogStore.StoreLogs(logs); err != nil {
			return err
		}
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
	if !behind {
		c.setDurable(last)
		return nil
	}
	select {
	case c.queue <- logs:
		return nil
	case <-c.stop:
		return errLogClosed
	}
}

// DeleteRange forgets every cached entry: raft deletes the log's head after
// a snapshot and its tail on a conflict, both rare. A tail deleted takes
// the durable index back: the entries written there next are new.
//
// A follower that installs a leader's snapshot has raft delete its whole
// log (removeOldLogs, for a gapless store such as the wal), even the
// entries after the snapshot, while raft goes on believing it holds them:
// the next commit then reads one back and raft panics ("log not found",
// hashicorp/raft#697; seen in TestHistoryBytesReplicated). The Raft rule is
// to keep the entries after the snapshot when the log holds the snapshot's
// last entry with its term; so a deletion of the whole log keeps them then
// (retainAfterSnapshot).
func (c *logCache) DeleteRange(lo, hi uint64) error {
	if err := c.waitWritten(); err != nil {
		return err
	}
	if keep := c.retainAfterSnapshot(lo, hi); keep > 0 {
		if keep <= lo {
			return nil
		}
		hi = keep - 1
	}
	c.mu.Lock()
	c.ring = [logCacheSize]*raft.Log{}
	c.mu.Unlock()
	err := c.LogStore.DeleteRange(lo, hi)
	c.dmu.Lock()
	if d := c.durable.Load(); lo <= d && d <= hi && lo > 0 {
		c.durable.Store(lo - 1)
	}
	c.dmu.Unlock()
	return err
}

// snapshotCreated records the newest snapshot raft created (its own, or one
// a leader sent): its last entry's index and term.
func (c *logCache) snapshotCreated(index, term uint64) {
	for {
		cur := c.snap.Load()
		if cur != nil && cur[0] >= index {
			return
		}
		if c.snap.CompareAndSwap(cur, &[2]uint64{index, term}) {
			return
		}
	}
}

// retainAfterSnapshot returns the first index to keep when raft deletes
// lo..hi: the newest snapshot's index when lo..hi is the whole log, the
// log goes past that index and holds the snapshot's entry with its term;
// else 0, keep nothing.
func (c *logCache) retainAfterSnapshot(lo, hi uint64) uint64 {
	s := c.snap.Load()
	if s == nil {
		return 0
	}
	index, term := s[0], s[1]
	first, err := c.LogStore.FirstIndex()
	if err != nil || first != lo || index < lo || index >= hi {
		return 0
	}
	if last, err := c.LogStore.LastIndex(); err != nil || last != hi {
		return 0
	}
	var l raft.Log
	if err := c.LogStore.GetLog(index, &l); err != nil || l.Term != term {
		return 0
	}
	return index
}

// IsMonotonic passes the store's raft.MonotonicLogStore on (the wal is).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// writer stores the batches of the queue in order, those waiting at once
// in one write.
func (c *logCache) writer() {
	defer c.writerWG.Done()
	var logs []*raft.Log
	for {
		select {
		case b := <-c.queue:
			logs = append(logs[:0], b...)
		case <-c.stop:
			return
		}
		batches := 1
	more:
		for len(logs) < 4*maxAppendEntries {
			select {
			case b := <-c.queue:
				logs = append(logs, b...)
				batches++
			default:
				break more
			}
		}
		if c.failure() != nil {
			continue // stopped: what is queued is dropped, never applied
		}
		if err := c.LogStore.StoreLogs(logs); err != nil {
			err = fmt.Errorf("cluster: the leader's raft log could not store entries %d to %d: %w; "+
				"this member left raft and must be restarted: it replays what is on disk "+
				"(no member applied those entries, no client was answered for them)",
				logs[0].Index, logs[len(logs)-1].Index, err)
			c.fail(err) // first: whoever sees the failure finds the node stopping
			c.dmu.Lock()
			c.err = err
			c.durableCond.Broadcast()
			c.dmu.Unlock()
			continue
		}
		c.dmu.Lock()
		c.pending -= batches
		c.setDurableLocked(logs[len(logs)-1].Index)
		c.dmu.Unlock()
	}
}

func (c *logCache) setDurable(i uint64) {
	c.dmu.Lock()
	c.setDurableLocked(i)
	c.dmu.Unlock()
}

func (c *logCache) setDurableLocked(i uint64) {
	if i > c.durable.Load() {
		c.durable.Store(i)
	}
	c.durableCond.Broadcast()
}

// failure is the writer's failure, or errLogClosed after close.
func (c *logCache) failure() error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return c.failureLocked()
}

func (c *logCache) failureLocked() error {
	if c.err != nil {
		return c.err
	}
	if c.stopped {
		return errLogClosed
	}
	return nil
}

// waitDurable waits until entry i is on this member's disk. It fails once
// the writer failed or the cache was closed.
func (c *logCache) waitDurable(i uint64) error {
	if c.durable.Load() >= i {
		return nil
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	for c.durable.Load() < i {
		if err := c.failureLocked(); err != nil {
			return err
		}
		c.durableCond.Wait()
	}
	return nil
}

// waitWritten waits until every batch handed to the writer is on disk:
// before anything that must follow them (a synchronous write, a deletion,
// a read of the disk).
func (c *logCache) waitWritten() error {
	if c.queue == nil {
		return nil
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	for c.pending > 0 {
		if err := c.failureLocked(); err != nil {
			return err
		}
		c.durableCond.Wait()
	}
	return nil
}

// close writes what is queued and stops the writer (after raft stopped:
// nothing queues any more), and fails the waits still pending.
func (c *logCache) close() {
	c.stopOnce.Do(func() {
		c.waitWritten()
		c.dmu.Lock()
		c.stopped = true
		c.durableCond.Broadcast()
		c.dmu.Unlock()
		close(c.stop)
	})
	c.writerWG.Wait()
}

// durableTransport is raft's transport with the commit index of every
// AppendEntries capped at the entries this member has on disk (see
// logCache): a follower never applies an entry the leader could still lose.
type durableTransport struct {
	raft.Transport
	durable *atomic.Uint64
	capped  *atomic.Uint64 // AppendEntries whose commit index was lowered
}

func (t durableTransport) capCommit(args *raft.AppendEntriesRequest) {
	if d := t.durable.Load(); args.LeaderCommitIndex > d {
		args.LeaderCommitIndex = d
		t.capped.Add(1)
	}
}

func (t durableTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	t.capCommit(args)
	return t.Transport.AppendEntries(id, target, args, resp)
}

func (t durableTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return durablePipeline{p, t}, nil
}

// RequestPreVote and Close pass raft's optional interfaces on (every
// transport of this package has both).
func (t durableTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return errors.New("cluster: raft transport without pre-vote")
	}
	return pv.RequestPreVote(id, target, args, resp)
}

func (t durableTransport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

type durablePipeline struct {
	raft.AppendPipeline
	t durableTransport
}

func (p durablePipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	p.t.capCommit(args)
	return p.AppendPipeline.AppendEntries(args, resp)
}
