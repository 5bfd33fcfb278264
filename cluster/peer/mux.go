package peer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/cluster"
)

// Multiplexed forwarding (protoMux): after the protocol byte the server
// answers protoMux once, then both sides exchange frames
// [uint32 length][uint64 call ID][payload] (the length counts the ID and
// the payload). Requests on one connection are served concurrently and
// answered in any order; each side has one writer that coalesces every
// frame queued into one TLS write. A member whose binary predates protoMux
// closes the connection instead of answering: the caller then uses the
// one-request-per-connection protocol (protoForward) with it for a while.
const (
	protoMux byte = 'M'

	// muxConnsPerPeer is how many multiplexed connections a member keeps
	// to one peer: a second one lets two cores encrypt and decrypt.
	muxConnsPerPeer = 2
	// muxQueue is how many frames may wait for a connection's writer.
	muxQueue = 1024
	// muxBuffer is the size of each side's read and write buffers.
	muxBuffer = 64 << 10
	// legacyRetry is how long a peer that refused protoMux is called with
	// protoForward before protoMux is tried again (it may be upgraded).
	legacyRetry = time.Minute
	// muxSilence is how long a connection may go without an answer, past
	// a call abandoned on it, before it is taken for dead. A call with a
	// short deadline (a lock refresh has tens of milliseconds) would
	// otherwise close a busy peer's healthy connection, and every call in
	// flight on it, whenever the peer took longer than that to answer.
	muxSilence = time.Second
)

// errMuxRefused is a peer's refusal of protoMux (an older binary).
var errMuxRefused = errors.New("peer: multiplexed forwarding refused")

// muxFrame is one frame to write.
type muxFrame struct {
	id      uint64
	payload []byte
	call    *muxCall // the client's call, nil for a server's answer
}

// muxCall is one request in flight on a client connection.
type muxCall struct {
	// state: 0 queued, 1 handed to the writer (maybe sent), 2 abandoned.
	state atomic.Int32
	ans   chan muxAnswer // buffered 1: exactly one answer or error
}

type muxAnswer struct {
	b   []byte
	err error
}

// muxConn is the client side of one multiplexed connection.
type muxConn struct {
	addr string
	c    net.Conn
	out  chan muxFrame
	done chan struct{} // closed when the connection fails or closes

	mu       sync.Mutex
	pending  map[uint64]*muxCall
	nextID   uint64
	closed   bool // takes no new call: failed, or the peer sent a goaway
	failed   bool
	lastRead atomic.Int64 // unix nanos of the last answer read
	inflight atomic.Int32
	dead     atomic.Bool // closed: muxConnFor passes it over
}

// muxPool is a member's multiplexed connections to one peer.
type muxPool struct {
	conns       []*muxConn
	dialing     int
	dialed      chan struct{} // closed (and replaced) when a dial ends
	legacyUntil time.Time     // the peer refused protoMux: use protoForward until then
}

// callMux sends req over a multiplexed connection to addr. It returns
// errMuxRefused when the peer only speaks protoForward.
func (n *Network) callMux(ctx context.Context, addr string, req []byte) ([]byte, error) {
	mc, err := n.muxConnFor(ctx, addr)
	if err != nil {
		return nil, err
	}
	cl := &muxCall{ans: make(chan muxAnswer, 1)}
	mc.mu.Lock()
	if mc.closed {
		mc.mu.Unlock()
		return nil, fmt.Errorf("peer: connection to peer %s closed: %w", addr, cluster.ErrNotSent)
	}
	mc.nextID++
	id := mc.nextID
	mc.pending[id] = cl
	mc.mu.Unlock()
	mc.inflight.Add(1)
	defer mc.inflight.Add(-1)
	sentAt := time.Now().UnixNano()
	select {
	case mc.out <- muxFrame{id: id, payload: req, call: cl}:
	case a := <-cl.ans: // the connection failed first
		return a.b, a.err
	case <-ctx.Done():
		return nil, mc.abandon(id, cl, ctx, sentAt)
	}
	select {
	case a := <-cl.ans:
		return a.b, a.err
	case <-ctx.Done():
		return nil, mc.abandon(id, cl, ctx, sentAt)
	}
}

// abandon gives up on a call whose context ended. A request not yet handed
// to the writer is never sent. A connection that has read nothing since
// the call was queued, for at least muxSilence, is taken for dead (a peer
// gone without a FIN) and closed, so the next call dials afresh.
func (mc *muxConn) abandon(id uint64, cl *muxCall, ctx context.Context, sentAt int64) error {
	notSent := cl.state.CompareAndSwap(0, 2)
	mc.mu.Lock()
	delete(mc.pending, id)
	mc.mu.Unlock()
	if notSent {
		return fmt.Errorf("peer: peer %s: %w: %w", mc.addr, ctx.Err(), cluster.ErrNotSent)
	}
	if mc.lastRead.Load() < sentAt && time.Now().UnixNano()-sentAt >= int64(muxSilence) {
		mc.fail(fmt.Errorf("no answer from peer %s", mc.addr))
	}
	return fmt.Errorf("peer: peer %s: %w", mc.addr, ctx.Err())
}

// muxConnFor returns a multiplexed connection to addr: an idle one, else a
// new one while there are fewer than muxConnsPerPeer, else the least busy.
func (n *Network) muxConnFor(ctx context.Context, addr string) (*muxConn, error) {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, fmt.Errorf("peer: network closed: %w", cluster.ErrNotSent)
		}
		p := n.mux[addr]
		if p == nil {
			p = &muxPool{dialed: make(chan struct{})}
			n.mux[addr] = p
		}
		if time.Now().Before(p.legacyUntil) {
			n.mu.Unlock()
			return nil, errMuxRefused
		}
		live := p.conns[:0]
		for _, mc := range p.conns {
			if !mc.dead.Load() {
				live = append(live, mc)
			}
		}
		clear(p.conns[len(live):])
		p.conns = live
		var best *muxConn
		for _, mc := range p.conns {
			if best == nil || mc.inflight.Load() < best.inflight.Load() {
				best = mc
			}
		}
		if best != nil && (best.inflight.Load() == 0 || len(p.conns)+p.dialing >= muxConnsPerPeer) {
			n.mu.Unlock()
			return best, nil
		}
		if len(p.conns)+p.dialing < muxConnsPerPeer {
			p.dialing++
			n.mu.Unlock()
			mc, err := n.dialMux(ctx, addr)
			n.mu.Lock()
			p.dialing--
			close(p.dialed)
			p.dialed = make(chan struct{})
			if err == nil && n.closed {
				err = net.ErrClosed
			}
			if errors.Is(err, errMuxRefused) {
				p.legacyUntil = time.Now().Add(legacyRetry)
			}
			if err != nil {
				n.mu.Unlock()
				if mc != nil {
					mc.c.Close()
				}
				if errors.Is(err, errMuxRefused) {
					return nil, err
				}
				return nil, fmt.Errorf("peer: connect to peer %s: %w: %w", addr, err, cluster.ErrNotSent)
			}
			p.conns = append(p.conns, mc)
			n.wg.Add(2)
			go mc.readLoop(n, p)
			go mc.writeLoop(n)
			n.mu.Unlock()
			return mc, nil
		}
		// No connection yet and every slot is dialing: wait for a dial.
		wait := p.dialed
		n.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("peer: connect to peer %s: %w: %w", addr, ctx.Err(), cluster.ErrNotSent)
		}
	}
}

// dialMux dials addr, announces protoMux and waits for the peer to accept
// it. A peer that closes the connection instead predates protoMux.
func (n *Network) dialMux(ctx context.Context, addr string) (*muxConn, error) {
	c, err := n.dial(ctx, addr, protoMux)
	if err != nil {
		return nil, err
	}
	mc := &muxConn{addr: addr, c: c, out: make(chan muxFrame, muxQueue), done: make(chan struct{}),
		pending: make(map[uint64]*muxCall)}
	dl := time.Now().Add(peerHandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.SetReadDeadline(dl)
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return mc, err
		}
		return mc, fmt.Errorf("%w (%v)", errMuxRefused, err)
	}
	if ack[0] != protoMux {
		return mc, fmt.Errorf("%w (answered %q)", errMuxRefused, ack[0])
	}
	c.SetReadDeadline(time.Time{})
	return mc, nil
}

// fail closes the connection and answers every pending call: a request
// never handed to the writer as not sent, the others as lost.
func (mc *muxConn) fail(err error) {
	mc.mu.Lock()
	if mc.failed {
		mc.mu.Unlock()
		return
	}
	mc.failed, mc.closed = true, true
	mc.dead.Store(true)
	pending := mc.pending
	mc.pending = nil
	mc.mu.Unlock()
	close(mc.done)
	mc.c.Close()
	for _, cl := range pending {
		if cl.state.CompareAndSwap(0, 2) {
			cl.ans <- muxAnswer{err: fmt.Errorf("peer: connection to peer %s failed: %v: %w", mc.addr, err, cluster.ErrNotSent)}
		} else {
			cl.ans <- muxAnswer{err: fmt.Errorf("peer: answer from peer %s: %w", mc.addr, err)}
		}
	}
}

// readLoop delivers answers until the connection fails, then drops it
// from the pool.
func (mc *muxConn) readLoop(n *Network, p *muxPool) {
	defer n.wg.Done()
	r := bufio.NewReaderSize(mc.c, muxBuffer)
	var err error
	for {
		var id uint64
		var b []byte
		if id, b, err = readMuxFrame(r); err != nil {
			break
		}
		mc.lastRead.Store(time.Now().UnixNano())
		if id == 0 {
			mc.goaway(b)
			n.dropMux(p, mc)
			continue
		}
		mc.mu.Lock()
		cl := mc.pending[id]
		delete(mc.pending, id)
		mc.mu.Unlock()
		if cl != nil {
			cl.ans <- muxAnswer{b: b}
		}
	}
	mc.fail(err)
	n.dropMux(p, mc)
}

// dropMux takes mc out of its pool: new calls use another connection.
func (n *Network) dropMux(p *muxPool, mc *muxConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, x := range p.conns {
		if x == mc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			return
		}
	}
}

// goaway handles the peer's notice that it is closing the connection:
// it takes no new call, and the calls after the last one the peer took
// were never served, so they may be sent again elsewhere.
func (mc *muxConn) goaway(b []byte) {
	last, k := binary.Uvarint(b)
	mc.mu.Lock()
	if k <= 0 || mc.closed {
		mc.mu.Unlock()
		return
	}
	mc.closed = true
	mc.dead.Store(true)
	var unserved []*muxCall
	for id, cl := range mc.pending {
		if id > last {
			unserved = append(unserved, cl)
			delete(mc.pending, id)
		}
	}
	mc.mu.Unlock()
	for _, cl := range unserved {
		cl.state.Store(2)
		cl.ans <- muxAnswer{err: fmt.Errorf("peer: peer %s is closing the connection: %w", mc.addr, cluster.ErrNotSent)}
	}
}

// writeLoop writes queued requests, flushing when the queue is empty.
func (mc *muxConn) writeLoop(n *Network) {
	defer n.wg.Done()
	w := bufio.NewWriterSize(mc.c, muxBuffer)
	for {
		var f muxFrame
		select {
		case f = <-mc.out:
		case <-mc.done:
			return
		}
		for {
			if f.call.state.CompareAndSwap(0, 1) { // else abandoned: never sent
				if err := writeMuxFrame(w, f.id, f.payload); err != nil {
					mc.fail(err)
					return
				}
			}
			if len(mc.out) == 0 {
				break
			}
			f = <-mc.out
		}
		if err := w.Flush(); err != nil {
			mc.fail(err)
			return
		}
	}
}

// muxServer is the server side of one multiplexed connection.
type muxServer struct {
	c        net.Conn
	out      chan muxFrame
	done     chan struct{} // closed when the reader stops
	handlers sync.WaitGroup

	mu       sync.Mutex
	lastID   uint64 // the last request taken
	closing  bool   // a goaway is on its way: take no more requests
	shutdown sync.Once
}

// goawayWait bounds how long a closing network waits for the requests in
// flight on a connection to be answered before it closes it.
const goawayWait = time.Second

// serveMux answers the frames of a multiplexed connection, each in its own
// goroutine, until the peer hangs up or the network closes (close).
func (n *Network) serveMux(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(peerHandshakeTimeout))
	if _, err := c.Write([]byte{protoMux}); err != nil {
		return
	}
	c.SetWriteDeadline(time.Time{})
	ms := &muxServer{c: c, out: make(chan muxFrame, muxQueue), done: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.muxServed[ms] = struct{}{}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.muxServed, ms)
		n.mu.Unlock()
		close(ms.done)
		ms.handlers.Wait()
	}()
	n.wg.Add(1)
	go ms.writeLoop(n)
	r := bufio.NewReaderSize(c, muxBuffer)
	for {
		id, req, err := readMuxFrame(r)
		if err != nil {
			return
		}
		ms.mu.Lock()
		if ms.closing {
			ms.mu.Unlock()
			continue // after the goaway: the caller knows it was not served
		}
		ms.lastID = id
		ms.handlers.Add(1)
		ms.mu.Unlock()
		n.mu.Lock()
		h := n.handler
		n.mu.Unlock()
		go func() {
			defer ms.handlers.Done()
			var resp []byte
			if h == nil {
				resp = cluster.NotServing()
			} else {
				resp = h(n.baseCtx, req)
			}
			select {
			case ms.out <- muxFrame{id: id, payload: resp}:
			case <-ms.done:
			}
		}()
	}
}

// close tells the caller which requests were taken (a goaway frame: ID 0,
// the last ID taken), lets those in flight be answered for a moment, then
// closes the connection. Requests after the goaway are not served, and the
// caller may send them again elsewhere.
func (ms *muxServer) close() {
	ms.shutdown.Do(func() {
		ms.mu.Lock()
		ms.closing = true
		last := ms.lastID
		ms.mu.Unlock()
		answered := make(chan struct{})
		go func() { ms.handlers.Wait(); close(answered) }()
		select {
		case <-answered:
		case <-time.After(goawayWait):
		}
		select {
		case ms.out <- muxFrame{payload: binary.AppendUvarint(nil, last)}:
		case <-ms.done:
			ms.c.Close()
		}
	})
}

// writeLoop writes answers, flushing when the queue is empty; the goaway
// frame is the last, after which it closes the connection.
func (ms *muxServer) writeLoop(n *Network) {
	defer n.wg.Done()
	defer ms.c.Close()
	w := bufio.NewWriterSize(ms.c, muxBuffer)
	for {
		var f muxFrame
		select {
		case f = <-ms.out:
		case <-ms.done:
			return
		}
		for {
			ms.c.SetWriteDeadline(time.Now().Add(peerRPCTimeout))
			if err := writeMuxFrame(w, f.id, f.payload); err != nil {
				return
			}
			if f.id == 0 { // goaway
				w.Flush()
				return
			}
			if len(ms.out) == 0 {
				break
			}
			f = <-ms.out
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

func writeMuxFrame(w *bufio.Writer, id uint64, b []byte) error {
	var h [12]byte
	binary.BigEndian.PutUint32(h[:4], uint32(8+len(b)))
	binary.BigEndian.PutUint64(h[4:], id)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readMuxFrame(r *bufio.Reader) (uint64, []byte, error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	l := binary.BigEndian.Uint32(h[:4])
	if l < 8 || l-8 > maxFrame {
		return 0, nil, fmt.Errorf("peer: frame of %d bytes is over the limit of %d", l, maxFrame)
	}
	b := make([]byte, l-8)
	_, err := io.ReadFull(r, b)
	return binary.BigEndian.Uint64(h[4:]), b, err
}
