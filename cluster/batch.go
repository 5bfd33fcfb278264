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

// Coalesced writes. On the leader, the writes of its own clients and those
// forwarded by followers are queued and proposed together: one cmdBatch
// entry carries them all, and every replica applies them in order, at the
// batch's time, exactly as separate entries (same store semantics, etcd
// indexes, watch events and per-request errors). A heartbeat (a request
// with Refresh set, usually PUT ?refresh=true&prevExist=true&ttl=N), which
// changes nothing but a deadline, used to be a raft entry of its own; now
// thousands share one. Other writes gain too: one entry, one encoding and
// one apply dispatch for many (docs/performance.md).
//
// One batch is in flight at a time: the next is proposed once the previous
// has committed and applied here (group commit), so the queue fills while
// the log is busy. Under load (the previous batch carried more than one) a
// batch led by a heartbeat also waits up to heartbeatLinger after it
// arrived, for the clients just answered to send their next one; a lone
// client (batches of one) and other writes do not wait at all.
//
// A batch entry needs featureBatch on every member of the configuration;
// until then (a rolling upgrade, a member added and not yet announced)
// every write is an entry of its own, as before.
const (
	heartbeatLinger = 2 * time.Millisecond
	// maxBatch and maxBatchBytes bound one batch entry.
	maxBatch      = 4096
	maxBatchBytes = 1 << 20
)

// batcher is the leader's write queue. Its loop is owned by the node.
type batcher struct {
	n *Node

	mu    sync.Mutex
	queue []*pendingWrite
	// kick wakes the loop when the queue gets its first request or fills
	// a batch.
	kick chan struct{}

	// lastSize is the size of the batch proposed last (the loop's own).
	lastSize int

	// hold, in tests, runs before a batch of size requests is proposed.
	hold atomic.Pointer[func(size int)]
}

type pendingWrite struct {
	req  *store.Request
	at   time.Time
	done chan writeAnswer // buffered: the loop never blocks on it
}

type writeAnswer struct {
	ev  *store.Event
	idx uint64
	err error
}

func newBatcher(n *Node) *batcher {
	return &batcher{n: n, kick: make(chan struct{}, 1)}
}

// proposeWrite commits a write on the leader: through the queue when the
// whole cluster can apply a batch, else as its own entry.
func (n *Node) proposeWrite(ctx context.Context, r *store.Request) (*store.Event, uint64, error) {
	if !n.clusterHas(featureBatch) {
		if r.Refresh {
			n.metrics.heartbeatEntries.Inc()
		}
		return n.proposeLocal(ctx, r)
	}
	return n.batch.submit(ctx, r)
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
func (q *batcher) submit(ctx context.Context, r *store.Request) (*store.Event, uint64, error) {
	if !q.n.isLeader() {
		return nil, 0, ErrNotLeader
	}
	p := &pendingWrite{req: r, at: time.Now(), done: make(chan writeAnswer, 1)}
	q.mu.Lock()
	q.queue = append(q.queue, p)
	k := len(q.queue)
	q.mu.Unlock()
	if k == 1 || k == maxBatch {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	select {
	case a := <-p.done:
		return a.ev, a.idx, a.err
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("%w: the write was queued for a batch; it may or may not be applied", ErrTimeout)
	case <-q.n.stop: // the loop may be gone; what it still held was answered
		return nil, 0, ErrStopped
	}
}

// queued is the number of writes waiting for the next batch.
func (q *batcher) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// run proposes batches until stop, then fails what is still queued.
func (q *batcher) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		q.mu.Lock()
		k := len(q.queue)
		var wait time.Duration
		if k > 0 && q.queue[0].req.Refresh {
			wait = heartbeatLinger - time.Since(q.queue[0].at)
		}
		q.mu.Unlock()
		if k == 0 || (wait > 0 && k < maxBatch && q.lastSize > 1) {
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
func (q *batcher) take() []*pendingWrite {
	q.mu.Lock()
	defer q.mu.Unlock()
	k, size := 0, 0
	for k < len(q.queue) && k < maxBatch && (k == 0 || size < maxBatchBytes) {
		size += requestSize(q.queue[k].req)
		k++
	}
	batch := q.queue[:k:k]
	q.queue = append([]*pendingWrite(nil), q.queue[k:]...)
	return batch
}

func (q *batcher) failQueued(err error) {
	q.mu.Lock()
	queue := q.queue
	q.queue = nil
	q.mu.Unlock()
	for _, p := range queue {
		p.done <- writeAnswer{err: err}
	}
}

// propose commits batch and answers each request: as one entry when it can
// (one request is a plain cmdRequest, as before), else one entry each,
// all queued in raft before the first is waited for.
func (q *batcher) propose(batch []*pendingWrite) {
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
		n.metrics.heartbeatEntries.Add(float64(heartbeats(batch)))
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
	if heartbeats(batch) > 0 {
		n.metrics.heartbeatEntries.Inc()
	}
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
func answerOf(f raft.ApplyFuture, i int) writeAnswer {
	if err := f.Error(); err != nil {
		return writeAnswer{err: raftError(err)}
	}
	res := f.Response().(applyResult)
	if i >= 0 && res.err == nil { // an FSM fault answers the whole entry
		res = res.batch[i]
	}
	return writeAnswer{ev: res.event, idx: f.Index(), err: res.err}
}

// heartbeats counts the refreshes in batch.
func heartbeats(batch []*pendingWrite) int {
	k := 0
	for _, p := range batch {
		if p.req.Refresh {
			k++
		}
	}
	return k
}
