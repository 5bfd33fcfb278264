package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/store"
)

// Coalesced refreshes. A heartbeat (a request with Refresh set, usually
// PUT ?refresh=true&prevExist=true&ttl=N) changes nothing but a deadline,
// yet each one used to be a raft entry of its own. On the leader, the
// refreshes of its own clients and those forwarded by followers are queued
// and proposed together: one cmdBatch entry carries them all, and every
// replica applies them in order, at the batch's time, exactly as separate
// entries (same store semantics, etcd indexes and per-request errors).
//
// One batch is in flight at a time: the next is proposed once the previous
// has committed and applied here (group commit), so the queue fills while
// the log is busy. Under load (the previous batch carried more than one) a
// batch also waits up to refreshLinger after its oldest request arrived,
// for the clients just answered to send their next one; a lone client
// (batches of one) does not wait at all.
//
// A batch entry needs featureBatch on every member of the configuration;
// until then (a rolling upgrade, a member added and not yet announced)
// every refresh is an entry of its own, as before.
const (
	refreshLinger = 2 * time.Millisecond
	// maxRefreshBatch and maxRefreshBytes bound one batch entry.
	maxRefreshBatch = 4096
	maxRefreshBytes = 1 << 20
)

// refresher is the leader's refresh queue. Its loop is owned by the node.
type refresher struct {
	n *Node

	mu    sync.Mutex
	queue []*pendingRefresh
	// kick wakes the loop when the queue gets its first request or fills
	// a batch.
	kick chan struct{}

	// lastSize is the size of the batch proposed last (the loop's own).
	lastSize int

	// hold, in tests, runs before a batch of size requests is proposed.
	hold atomic.Pointer[func(size int)]
}

type pendingRefresh struct {
	req  *store.Request
	at   time.Time
	done chan refreshAnswer // buffered: the loop never blocks on it
}

type refreshAnswer struct {
	ev  *store.Event
	idx uint64
	err error
}

func newRefresher(n *Node) *refresher {
	return &refresher{n: n, kick: make(chan struct{}, 1)}
}

// proposeWrite commits a write on the leader: a refresh through the queue
// when the whole cluster can apply a batch, anything else as its own entry.
func (n *Node) proposeWrite(ctx context.Context, r *store.Request) (*store.Event, uint64, error) {
	if !r.Refresh {
		return n.proposeLocal(ctx, r)
	}
	if !n.clusterHas(featureBatch) {
		n.metrics.heartbeatEntries.Inc()
		return n.proposeLocal(ctx, r)
	}
	return n.refresh.submit(ctx, r)
}

// clusterHas reports whether every member of the raft configuration
// (voters and non-voters: all of them apply the log) has announced feat.
func (n *Node) clusterHas(feat uint64) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	for _, s := range servers {
		id, err := strconv.ParseUint(string(s.ID), 16, 64)
		if err != nil {
			return false
		}
		info, ok := n.fsm.member(id)
		if !ok || info.Features&feat == 0 {
			return false
		}
	}
	return len(servers) > 0
}

// submit queues r and waits for its own result in the batch.
func (q *refresher) submit(ctx context.Context, r *store.Request) (*store.Event, uint64, error) {
	if !q.n.isLeader() {
		return nil, 0, ErrNotLeader
	}
	p := &pendingRefresh{req: r, at: time.Now(), done: make(chan refreshAnswer, 1)}
	q.mu.Lock()
	q.queue = append(q.queue, p)
	k := len(q.queue)
	q.mu.Unlock()
	if k == 1 || k == maxRefreshBatch {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	select {
	case a := <-p.done:
		return a.ev, a.idx, a.err
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("%w: the refresh was queued for a batch; it may or may not be applied", ErrTimeout)
	case <-q.n.stop: // the loop may be gone; what it still held was answered
		return nil, 0, ErrStopped
	}
}

// queued is the number of refreshes waiting for the next batch.
func (q *refresher) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// run proposes batches until stop, then fails what is still queued.
func (q *refresher) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		q.mu.Lock()
		k := len(q.queue)
		var wait time.Duration
		if k > 0 {
			wait = refreshLinger - time.Since(q.queue[0].at)
		}
		q.mu.Unlock()
		if k == 0 || (wait > 0 && k < maxRefreshBatch && q.lastSize > 1) {
			if k > 0 {
				t.Reset(wait)
			}
			select {
			case <-stop:
				q.failQueued(ErrStopped)
				return
			case <-q.kick:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		batch := q.take()
		q.lastSize = len(batch)
		q.propose(batch)
	}
}

// take removes the next batch from the queue.
func (q *refresher) take() []*pendingRefresh {
	q.mu.Lock()
	defer q.mu.Unlock()
	k, size := 0, 0
	for k < len(q.queue) && k < maxRefreshBatch && (k == 0 || size < maxRefreshBytes) {
		size += requestSize(q.queue[k].req)
		k++
	}
	batch := q.queue[:k:k]
	q.queue = append([]*pendingRefresh(nil), q.queue[k:]...)
	return batch
}

func (q *refresher) failQueued(err error) {
	q.mu.Lock()
	queue := q.queue
	q.queue = nil
	q.mu.Unlock()
	for _, p := range queue {
		p.done <- refreshAnswer{err: err}
	}
}

// propose commits batch and answers each request: as one entry when it can
// (one request is a plain cmdRequest, as before), else one entry each,
// all queued in raft before the first is waited for.
func (q *refresher) propose(batch []*pendingRefresh) {
	n := q.n
	if h := q.hold.Load(); h != nil {
		(*h)(len(batch))
	}
	if len(batch) > 1 && !n.clusterHas(featureBatch) {
		futures := make([]raft.ApplyFuture, len(batch))
		for i, p := range batch {
			c := command{typ: cmdRequest, now: n.leaderNow(), req: p.req}
			futures[i] = n.raft.Apply(c.encode(), n.cfg.RequestTimeout)
		}
		n.metrics.heartbeatEntries.Add(float64(len(batch)))
		for i, p := range batch {
			p.done <- answerOf(futures[i], -1)
		}
		return
	}
	c := command{typ: cmdRequest, now: n.leaderNow(), req: batch[0].req}
	if len(batch) > 1 {
		c = command{typ: cmdBatch, now: c.now, reqs: make([]*store.Request, len(batch))}
		for i, p := range batch {
			c.reqs[i] = p.req
		}
	}
	start := time.Now()
	f := n.raft.Apply(c.encode(), n.cfg.RequestTimeout)
	n.metrics.heartbeatEntries.Inc()
	if f.Error() == nil {
		n.metrics.observeApply(time.Since(start))
	}
	for i, p := range batch {
		if len(batch) == 1 {
			i = -1
		}
		p.done <- answerOf(f, i)
	}
}

// answerOf is request i's answer in f's result (-1: a single request).
func answerOf(f raft.ApplyFuture, i int) refreshAnswer {
	if err := f.Error(); err != nil {
		return refreshAnswer{err: raftError(err)}
	}
	res := f.Response().(applyResult)
	if i >= 0 && res.err == nil { // an FSM fault answers the whole entry
		res = res.batch[i]
	}
	return refreshAnswer{ev: res.event, idx: f.Index(), err: res.err}
}
