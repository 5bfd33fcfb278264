package v2http

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cairnkv/cairn/store"
)

// The queue of a lock or an election: in-order keys with a TTL in its
// backing directory, the holder first. Every change goes through
// Cluster.Propose; every decision is taken on the local replica after a
// ReadBarrier, so that a member that lags never acts on state the cluster
// has left behind.
//
// A waiter watches only its predecessor (and its own entry), so a release
// wakes one waiter, not the whole queue: 0.4's recipe
// (reference/etcd-v2.md §5.1). While it waits it keeps its entry alive
// with refreshes (refresh=true: the cheap heartbeat path, coalesced by the
// leader and delivered to no watcher) every half TTL; a waiter that gives
// up (timeout, client gone, member shutting down) deletes its entry, and an entry whose member died
// expires after its TTL. The wait runs in the request's goroutine.

// queueEntry is one entry of a queue.
type queueEntry struct {
	key   string
	index uint64 // its createdIndex: the fencing token
	value string
}

// readQueue reads the queue in dir from the local replica, in index
// order, and the store index it was read at (a watch from at+1 misses
// nothing). exists is false when dir was never created. Subdirectories
// (the queues of longer names, "a/b" below "a") are not entries.
func (h *Handler) readQueue(dir string) (q []queueEntry, at uint64, exists bool, err error) {
	st := h.cluster.Store()
	ev, err := st.Get(dir, false, true, h.cfg.Now())
	if err != nil {
		var e *store.Error
		if errors.As(err, &e) && e.ErrorCode == store.EcodeKeyNotFound {
			return nil, e.Index, false, nil
		}
		return nil, 0, false, err
	}
	if !ev.Node.Dir {
		return nil, 0, false, store.NewError(store.EcodeNotDir, dir, ev.EtcdIndex)
	}
	for _, n := range ev.Node.Nodes {
		if n.Dir || n.Value == nil {
			continue
		}
		q = append(q, queueEntry{key: n.Key, index: n.CreatedIndex, value: *n.Value})
	}
	// In-order names sort by index already; a key written into the
	// queue through /v2/keys need not, and the order is the index's.
	slices.SortFunc(q, func(a, b queueEntry) int { return cmp.Compare(a.index, b.index) })
	return q, ev.EtcdIndex, true, nil
}

// readQueueLinearizable is readQueue after a read barrier.
func (h *Handler) readQueueLinearizable(ctx context.Context, dir string) ([]queueEntry, uint64, bool, error) {
	if err := h.barrier(ctx); err != nil {
		return nil, 0, false, err
	}
	return h.readQueue(dir)
}

// barrier is Cluster.ReadBarrier bounded by RequestTimeout.
func (h *Handler) barrier(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	return h.cluster.ReadBarrier(ctx)
}

// propose is Cluster.Propose bounded by RequestTimeout.
func (h *Handler) propose(ctx context.Context, r *store.Request) (*store.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	ev, err := h.cluster.Propose(ctx, r)
	if err == nil && ev == nil {
		err = errors.New("v2http: the cluster applied the write but returned no event")
	}
	return ev, err
}

// enqueue appends an entry with value and ttl to the queue in dir.
func (h *Handler) enqueue(ctx context.Context, dir, value string, ttl uint64) (queueEntry, error) {
	ev, err := h.propose(ctx, &store.Request{Method: store.MethodPost, Path: dir, Value: value, HasTTL: true, TTL: ttl})
	if err != nil {
		return queueEntry{}, err
	}
	return queueEntry{key: ev.Node.Key, index: ev.Node.CreatedIndex, value: value}, nil
}

// refreshEntry extends the TTL of the entry at key, keeping its value: a
// refresh, which wakes no watcher. A missing entry is error 100.
func (h *Handler) refreshEntry(ctx context.Context, key string, ttl uint64) error {
	_, err := h.propose(ctx, &store.Request{Method: store.MethodPut, Path: key, PrevExist: store.PrevExistTrue, Refresh: true, HasTTL: true, TTL: ttl})
	return err
}

// removeEntry deletes e. Its key is its index (in-order names are never
// reused), so this cannot delete a later entry. It runs when the request is over, so it does not take the
// request's context; a failure is logged, and the entry expires after its
// TTL.
func (h *Handler) removeEntry(ctx context.Context, e queueEntry) {
	_, err := h.propose(context.WithoutCancel(ctx), &store.Request{Method: store.MethodDelete, Path: e.key})
	if err != nil && !isStoreCode(err, store.EcodeKeyNotFound) {
		h.log.Warn("module: cannot delete an abandoned queue entry; it expires after its TTL", "key", e.key, "err", err)
	}
}

// isStoreCode reports whether err is the store's error code.
func isStoreCode(err error, code int) bool {
	var e *store.Error
	return errors.As(err, &e) && e.ErrorCode == code
}

// position is the place of the entry with index in q (0: the holder), or
// -1 when it is not there.
func position(q []queueEntry, index uint64) int {
	for i, e := range q {
		if e.index == index {
			return i
		}
	}
	return -1
}

// findValue is the entry of q holding value, if any.
func findValue(q []queueEntry, value string) (queueEntry, bool) {
	for _, e := range q {
		if e.value == value {
			return e, true
		}
	}
	return queueEntry{}, false
}

// outcome is how a wait for the head of a queue ended.
type outcome string

// Outcomes; all but acquired are the reason label of
// cairn_mod_abandoned_total.
const (
	acquired   outcome = ""
	timedOut   outcome = "timeout"
	notFirst   outcome = "not_first"  // timeout=0 and another entry was first
	disconnect outcome = "disconnect" // the client went away
	shutdown   outcome = "shutdown"   // Handler.Close
	lost       outcome = "lost"       // the entry expired or was deleted meanwhile
	failed     outcome = "error"      // the cluster could not answer (err says why)
)

// heartbeatEvery is the refresh period of a waiting entry: half its TTL,
// so one lost refresh does not expire it.
func heartbeatEvery(ttl uint64) time.Duration {
	const most = 12 * time.Hour // and no overflow for absurd TTLs
	if ttl >= uint64(2*most/time.Second) {
		return most
	}
	return time.Duration(ttl) * time.Second / 2
}

// acquireTurn waits until me heads the queue in dir, refreshing it
// meanwhile, and gives the holder a full TTL from the moment it got the
// lock. timeout is acquire's: -1 waits for ever, 0 only checks, N waits
// N seconds. On any outcome but acquired and lost, the caller deletes
// me; err is set with failed only.
func (h *Handler) acquireTurn(ctx context.Context, module, dir string, me queueEntry, ttl uint64, timeout int64) (outcome, error) {
	h.modMetrics.waiters.WithLabelValues(module).Inc()
	defer h.modMetrics.waiters.WithLabelValues(module).Dec()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		deadline = t.C
	}
	beat := time.NewTicker(heartbeatEvery(ttl))
	defer beat.Stop()
	st := h.cluster.Store()
	for {
		q, at, _, err := h.readQueueLinearizable(ctx, dir)
		if err != nil {
			var se *store.Error
			switch {
			case ctx.Err() != nil:
				return disconnect, nil
			case timeout == 0 || errors.As(err, &se):
				return failed, err
			}
			// No read barrier (no leader, most likely): keep the entry
			// alive and try again shortly.
			h.log.Debug("module: read barrier failed while waiting; retrying", "key", me.key, "err", err)
			retry := time.NewTimer(barrierRetry)
			out, done := h.waitBeat(ctx, me, ttl, beat.C, deadline, retry.C, nil, nil)
			retry.Stop()
			if done {
				return out, nil
			}
			continue
		}
		pos := position(q, me.index)
		switch {
		case pos < 0:
			return lost, nil
		case pos == 0:
			if err := h.refreshEntry(ctx, me.key, ttl); isStoreCode(err, store.EcodeKeyNotFound) {
				return lost, nil
			}
			// Any other failure of the refresh leaves the holder with
			// what remains of its TTL, which it renews anyway.
			return acquired, nil
		case timeout == 0:
			return notFirst, nil
		}
		// Watch from the index read at: an event between the read and
		// the watch is replayed from history.
		pred, err := st.Watch(q[pos-1].key, false, false, at+1)
		if err != nil {
			continue
		}
		self, err := st.Watch(me.key, false, false, at+1)
		if err != nil {
			pred.Remove()
			continue
		}
		out, done := h.waitBeat(ctx, me, ttl, beat.C, deadline, nil, pred.EventChan(), self.EventChan())
		pred.Remove()
		self.Remove()
		if done {
			return out, nil
		}
	}
}

// barrierRetry is how long a waiter whose read barrier failed waits
// before it tries again (a barrier without a leader to confirm it fails
// only after the request timeout anyway).
const barrierRetry = 200 * time.Millisecond

// waitBeat waits for an event on pred or self, or for retry (done is
// false: read the queue again), refreshing me at every beat, or for the
// end of the wait (done is true).
func (h *Handler) waitBeat(ctx context.Context, me queueEntry, ttl uint64, beat, deadline, retry <-chan time.Time, pred, self <-chan *store.Event) (outcome, bool) {
	for {
		select {
		case <-retry:
			return acquired, false
		case <-pred:
			return acquired, false
		case <-self:
			return acquired, false
		case <-beat:
			err := h.refreshEntry(ctx, me.key, ttl)
			if isStoreCode(err, store.EcodeKeyNotFound) {
				return lost, true
			}
			if err != nil {
				h.log.Debug("module: refresh of a waiting entry failed; retrying at the next beat", "key", me.key, "err", err)
			}
		case <-deadline:
			return timedOut, true
		case <-ctx.Done():
			return disconnect, true
		case <-h.done:
			return shutdown, true
		}
	}
}
