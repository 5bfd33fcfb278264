package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/cluster"
)

// The peer port carries raft and Cairn's forwarding over mutual TLS. After
// the handshake the dialer sends one byte naming the protocol: raft's own
// RPCs, or Cairn's request/answer frames (forwarded proposals, reads,
// joins), multiplexed (protoMux, mux.go) or one at a time per connection
// (protoForward, what members before protoMux speak).
const (
	protoRaft    byte = 'R'
	protoForward byte = 'F'
)

const (
	peerHandshakeTimeout = 10 * time.Second
	peerRPCTimeout       = 10 * time.Second // raft's I/O deadline of one RPC on the peer port
	maxFrame             = 64 << 20         // a forwarded answer holds at most two values
	maxIdlePerPeer       = 32
	idleConnTTL          = time.Minute // an idle forwarding connection older than this is not reused
)

// Config configures New.
type Config struct {
	// BindAddr is where the peer port listens; AdvertiseAddr is the address
	// other members dial (the raft server address of this node).
	BindAddr, AdvertiseAddr string
	// Listener, if set, is the peer port, already listening (BindAddr is
	// then only used for the source address of dials): a caller that binds
	// port 0 learns the port before it advertises it. Once New
	// returns without error, the network owns it and closes it.
	Listener net.Listener
	// ServerTLS and ClientTLS must both demand a node certificate from the
	// other side (tlsconf's PeerServerConfig and PeerClientConfig).
	ServerTLS, ClientTLS *tls.Config
	Logger               *slog.Logger
	// DialTLS, if set, is called at every dial for the client
	// configuration to use in place of ClientTLS (which may then be nil),
	// so that material reloaded since start, a rotated CA included, is
	// used (tlsconf's PeerDialConfig). The network clones the result
	// before setting ServerName. An error fails that dial; New
	// calls it once and fails with its error.
	DialTLS func() (*tls.Config, error)
	// Refused, if set, is told of every handshake the peer port refuses
	// (tlsconf.HandshakeLog counts them and logs at a bounded rate); nil
	// logs each at WARN.
	Refused func(remote string, err error)
}

// Network is the peer port: one TLS listener for raft and forwarding.
// Outbound connections leave from the host of BindAddr when that host is a
// specific IP, so that peers (and fault-injecting proxies in tests) see
// which member dialed.
type Network struct {
	cfg    Config
	ln     net.Listener
	dialer net.Dialer
	trans  *raft.NetworkTransport
	heal   *healingTransport // trans, with RPCs on dead pooled connections sent again
	raftCh chan net.Conn
	log    *slog.Logger

	mu      sync.Mutex
	handler func(ctx context.Context, req []byte) []byte
	idle    map[string][]idleConn // protoForward connections, for peers that predate protoMux
	mux     map[string]*muxPool
	// muxServed are the multiplexed connections served: Close sends each
	// a goaway before closing it.
	muxServed map[*muxServer]struct{}
	conns     map[net.Conn]struct{} // forwarding connections served, raft connections either way
	dials     map[string]uint64     // raft connections dialed per peer address
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
	baseCtx   context.Context
	cancel    context.CancelFunc

	noMux bool // tests: refuse protoMux as a member that predates it does
}

type idleConn struct {
	c     net.Conn
	since time.Time
}

// New listens on cfg.BindAddr (or takes cfg.Listener) and returns
// the network.
func New(cfg Config) (*Network, error) {
	if cfg.ServerTLS == nil || (cfg.ClientTLS == nil && cfg.DialTLS == nil) {
		return nil, errors.New("peer: the peer port needs TLS configurations for both directions")
	}
	if cfg.DialTLS != nil {
		if _, err := cfg.DialTLS(); err != nil {
			return nil, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.BindAddr); err != nil {
			return nil, fmt.Errorf("peer: listen on peer address %s: %w (is another process using it? set --peer-bind-addr)", cfg.BindAddr, err)
		}
	}
	n := &Network{
		cfg: cfg, ln: ln, log: cfg.Logger,
		raftCh:    make(chan net.Conn),
		idle:      make(map[string][]idleConn),
		mux:       make(map[string]*muxPool),
		muxServed: make(map[*muxServer]struct{}),
		conns:     make(map[net.Conn]struct{}),
		dials:     make(map[string]uint64),
		done:      make(chan struct{}),
	}
	n.baseCtx, n.cancel = context.WithCancel(context.Background())
	n.dialer.Timeout = peerHandshakeTimeout
	if host, _, err := net.SplitHostPort(cfg.BindAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			n.dialer.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{n: n},
		MaxPool: raftMaxPool,
		Timeout: peerRPCTimeout,
		Logger:  cluster.RaftLogger(cfg.Logger),
	})
	n.heal = &healingTransport{NetworkTransport: n.trans, n: n}
	n.wg.Add(1)
	go n.acceptLoop()
	return n, nil
}

// Transport is raft's NetworkTransport over the peer port, with its small
// RPCs sent again when a peer had closed the pooled connection they took
// (healingTransport).
func (n *Network) Transport() raft.Transport { return n.heal }

// raftDials is how many raft connections were dialed to addr.
func (n *Network) raftDials(addr string) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials[addr]
}

// Addr is the address the peer port listens on.
func (n *Network) Addr() net.Addr { return n.ln.Addr() }

// Serve installs the handler of forwarded requests.
func (n *Network) Serve(h func(ctx context.Context, req []byte) []byte) {
	n.mu.Lock()
	n.handler = h
	n.mu.Unlock()
}

// Close stops the listener and closes every connection.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.done)
	n.cancel()
	err := n.ln.Close()
	// Closed outside the lock: a raft connection's Close takes it.
	open := make([]net.Conn, 0, len(n.conns))
	for c := range n.conns {
		open = append(open, c)
	}
	for _, cs := range n.idle {
		for _, ic := range cs {
			open = append(open, ic.c)
		}
	}
	n.idle = nil
	var muxes []*muxConn
	for _, p := range n.mux {
		muxes = append(muxes, p.conns...)
	}
	served := make([]*muxServer, 0, len(n.muxServed))
	for ms := range n.muxServed {
		served = append(served, ms)
	}
	n.mu.Unlock()
	var goaways sync.WaitGroup
	for _, ms := range served {
		goaways.Go(ms.close)
	}
	goaways.Wait()
	for _, c := range open {
		c.Close()
	}
	for _, mc := range muxes {
		mc.fail(net.ErrClosed)
	}
	n.trans.Close()
	n.wg.Wait()
	return err
}

func (n *Network) acceptLoop() {
	defer n.wg.Done()
	var delay time.Duration
	for {
		c, err := n.ln.Accept()
		if err != nil {
			select {
			case <-n.done:
				return
			default:
			}
			// Out of file descriptors and the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			n.log.Warn("peer port: accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		n.wg.Add(1)
		go n.handshake(c)
	}
}

// handshake authenticates an accepted connection and hands it to raft or to
// the forwarding server. The TLS configuration refuses anything but a node
// certificate; the refusal is logged with the reason.
func (n *Network) handshake(raw net.Conn) {
	defer n.wg.Done()
	c := tls.Server(raw, n.cfg.ServerTLS)
	c.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	var proto [1]byte
	if err := c.Handshake(); err != nil {
		if n.cfg.Refused != nil {
			n.cfg.Refused(raw.RemoteAddr().String(), err)
		} else {
			n.log.Warn("peer port: refused connection", "remote", raw.RemoteAddr().String(), "err", err)
		}
		c.Close()
		return
	}
	if _, err := io.ReadFull(c, proto[:]); err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	switch proto[0] {
	case protoRaft:
		tc, ok := n.trackRaft(c)
		if !ok {
			return
		}
		select {
		case n.raftCh <- tc:
		case <-n.done:
			tc.Close()
		}
	case protoMux:
		if n.noMux {
			c.Close()
			return
		}
		n.serveMux(c) // not tracked: Close sends it a goaway first
		c.Close()
	case protoForward:
		if !n.track(c) {
			return
		}
		defer n.untrack(c)
		n.serveForward(c)
	default:
		n.log.Warn("peer port: unknown protocol", "remote", raw.RemoteAddr().String(), "byte", proto[0])
		c.Close()
	}
}

func (n *Network) track(c net.Conn) bool {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		c.Close() // outside the lock: a raftConn's Close takes it
		return false
	}
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	return true
}

// trackRaft registers a raft connection, accepted or dialed, so that Close
// closes it: raft's NetworkTransport closes neither the connections it
// pooled nor those it serves, and their goroutines would outlive the
// network. The connection leaves the set when raft closes it.
func (n *Network) trackRaft(c net.Conn) (net.Conn, bool) {
	tc := &raftConn{Conn: c, n: n}
	if !n.track(tc) {
		return nil, false
	}
	return tc, true
}

type raftConn struct {
	net.Conn
	n    *Network
	once sync.Once
}

func (c *raftConn) Close() error {
	c.once.Do(func() {
		c.n.mu.Lock()
		delete(c.n.conns, c)
		c.n.mu.Unlock()
	})
	return c.Conn.Close()
}

func (n *Network) untrack(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
	c.Close()
}

// serveForward answers frames one at a time until the peer hangs up
// (protoForward, the protocol of members that predate protoMux).
func (n *Network) serveForward(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		req, err := readFrame(r)
		if err != nil {
			return
		}
		n.mu.Lock()
		h := n.handler
		n.mu.Unlock()
		var resp []byte
		if h == nil {
			resp = cluster.NotServing()
		} else {
			resp = h(n.baseCtx, req)
		}
		if err := writeFrame(c, resp); err != nil {
			return
		}
	}
}

// Call sends req to the peer at addr over a shared multiplexed connection
// (mux.go), or a pooled one-request connection to a peer that predates
// them.
func (n *Network) Call(ctx context.Context, addr string, req []byte) ([]byte, error) {
	ans, err := n.callMux(ctx, addr, req)
	if !errors.Is(err, errMuxRefused) {
		return ans, err
	}
	return n.callForward(ctx, addr, req)
}

// callForward sends req over a pooled protoForward connection.
func (n *Network) callForward(ctx context.Context, addr string, req []byte) ([]byte, error) {
	c, err := n.getConn(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("peer: connect to peer %s: %w: %w", addr, err, cluster.ErrNotSent)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := writeFrame(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("peer: send to peer %s: %w", addr, err)
	}
	resp, err := readFrame(bufio.NewReader(c))
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("peer: peer %s: %w", addr, ctx.Err())
		}
		return nil, fmt.Errorf("peer: answer from peer %s: %w", addr, err)
	}
	if stop() {
		n.putConn(addr, c)
	} else {
		c.Close()
	}
	return resp, nil
}

func (n *Network) getConn(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, net.ErrClosed
	}
	var reuse []net.Conn
	for cs := n.idle[addr]; len(cs) > 0; cs = n.idle[addr] {
		ic := cs[len(cs)-1]
		n.idle[addr] = cs[:len(cs)-1]
		if time.Since(ic.since) < idleConnTTL {
			reuse = append(reuse, ic.c)
			break
		}
		ic.c.Close()
	}
	n.mu.Unlock()
	for _, c := range reuse {
		if alive(c) {
			return c, nil
		}
		c.Close()
	}
	return n.dial(ctx, addr, protoForward)
}

// alive reports whether an idle forwarding connection is still open. The
// peer never speaks unasked, so anything but a read timeout (a FIN, a reset,
// a close_notify alert) means the connection is dead: reusing it would fail
// after the request was sent, when a proposal can no longer be retried. The
// probe reads the raw connection so a timeout cannot disturb TLS state.
func alive(c net.Conn) bool {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	raw.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := raw.Read(b[:])
	raw.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (n *Network) putConn(addr string, c net.Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || len(n.idle[addr]) >= maxIdlePerPeer {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	n.idle[addr] = append(n.idle[addr], idleConn{c: c, since: time.Now()})
}

// dial opens a TLS connection to a peer and announces the protocol.
func (n *Network) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	base := n.cfg.ClientTLS
	if n.cfg.DialTLS != nil {
		if base, err = n.cfg.DialTLS(); err != nil {
			return nil, err
		}
	}
	cfg := base.Clone()
	cfg.ServerName = host
	d := tls.Dialer{NetDialer: &n.dialer, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(peerHandshakeTimeout))
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

func writeFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint32(h[:])
	if l > maxFrame {
		return nil, fmt.Errorf("peer: frame of %d bytes is over the limit of %d", l, maxFrame)
	}
	b := make([]byte, l)
	_, err := io.ReadFull(r, b)
	return b, err
}

// streamLayer gives raft's NetworkTransport the raft connections of the
// shared peer port.
type streamLayer struct{ n *Network }

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.n.raftCh:
		return c, nil
	case <-s.n.done:
		return nil, net.ErrClosed
	}
}

// Close is a no-op: the listener is shared and closed by Network.Close.
func (s *streamLayer) Close() error { return nil }

// Addr is the advertised address: raft uses it as this server's address.
func (s *streamLayer) Addr() net.Addr { return advertisedAddr(s.n.cfg.AdvertiseAddr) }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.n.baseCtx, timeout)
	defer cancel()
	s.n.mu.Lock()
	s.n.dials[string(address)]++
	s.n.mu.Unlock()
	c, err := s.n.dial(ctx, string(address), protoRaft)
	if err != nil {
		return nil, err
	}
	if tc, ok := s.n.trackRaft(c); ok {
		return tc, nil
	}
	return nil, net.ErrClosed
}

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
