package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// Network connects a node to its peers: raft's transport, and a request
// channel over which followers forward proposals, reads and joins to the
// leader. peer.New is the real one (mutual TLS with node certificates);
// InmemHub makes in-process ones for tests.
type Network interface {
	// Transport carries raft's RPCs. raft.Shutdown closes it, so a network
	// serves one Node.
	Transport() raft.Transport
	// Call sends one request to the peer at addr and returns its answer. An
	// error wrapping ErrNotSent means the request never left this node.
	Call(ctx context.Context, addr string, req []byte) ([]byte, error)
	// Serve installs the handler of requests from peers. New calls it once,
	// before raft starts; until then requests get NotServing's answer.
	Serve(h func(ctx context.Context, req []byte) []byte)
	// Close stops serving and closes every connection.
	Close() error
}

// ErrNotSent marks a Call that failed before its request reached the peer:
// it is safe to retry, even for a proposal.
var ErrNotSent = errors.New("request not sent")

// errNoHandler answers a request that arrives before Serve.
var errNoHandler = errors.New("cluster: peer is starting")

// NotServing is the answer a Network gives to a request that arrives before
// Serve: the caller sees a starting peer, and the request as not sent, so
// that it may retry it anywhere.
func NotServing() []byte { return encodeFailure(errNoHandler) }

// InmemHub links in-process networks for tests: raft RPCs go through raft's
// InmemTransport and Calls are function calls. Isolate cuts a member off in
// both directions; Heal reconnects everyone.
type InmemHub struct {
	mu       sync.Mutex
	nets     map[string]*inmemNetwork
	isolated map[string]bool
}

// NewInmemHub returns an empty hub.
func NewInmemHub() *InmemHub {
	return &InmemHub{nets: make(map[string]*inmemNetwork), isolated: make(map[string]bool)}
}

// Network returns a new network at addr, connected to every other network
// of the hub. A network already at addr (a node being restarted) is replaced.
func (h *InmemHub) Network(addr string) Network {
	_, t := raft.NewInmemTransport(raft.ServerAddress(addr))
	n := &inmemNetwork{hub: h, addr: addr, trans: t}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nets[addr] = n
	h.relink()
	return n
}

// Isolate cuts addr off from every other member, both ways.
func (h *InmemHub) Isolate(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.isolated[addr] = true
	h.relink()
}

// Heal undoes every Isolate.
func (h *InmemHub) Heal() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.isolated)
	h.relink()
}

// relink connects every pair of networks that are not isolated. h.mu is held.
func (h *InmemHub) relink() {
	for a, na := range h.nets {
		na.trans.DisconnectAll()
		if h.isolated[a] {
			continue
		}
		for b, nb := range h.nets {
			if a != b && !h.isolated[b] {
				na.trans.Connect(raft.ServerAddress(b), nb.trans)
			}
		}
	}
}

func (h *InmemHub) peer(from, to string) (*inmemNetwork, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nets[to]
	if n == nil || h.isolated[from] || h.isolated[to] {
		return nil, fmt.Errorf("cluster: %s unreachable from %s: %w", to, from, ErrNotSent)
	}
	return n, nil
}

type inmemNetwork struct {
	hub     *InmemHub
	addr    string
	trans   *raft.InmemTransport
	mu      sync.RWMutex
	handler func(ctx context.Context, req []byte) []byte
}

func (n *inmemNetwork) Transport() raft.Transport { return n.trans }

func (n *inmemNetwork) Serve(h func(ctx context.Context, req []byte) []byte) {
	n.mu.Lock()
	n.handler = h
	n.mu.Unlock()
}

func (n *inmemNetwork) Call(ctx context.Context, addr string, req []byte) ([]byte, error) {
	p, err := n.hub.peer(n.addr, addr)
	if err != nil {
		return nil, err
	}
	p.mu.RLock()
	h := p.handler
	p.mu.RUnlock()
	if h == nil {
		return nil, fmt.Errorf("%w: %w", errNoHandler, ErrNotSent)
	}
	resp := h(ctx, append([]byte(nil), req...))
	// An isolation that began while the call ran loses the answer, as a
	// cut connection would.
	if _, err := n.hub.peer(n.addr, addr); err != nil {
		return nil, fmt.Errorf("cluster: connection to %s lost", addr)
	}
	return resp, nil
}

func (n *inmemNetwork) Close() error {
	n.Serve(nil)
	n.hub.mu.Lock()
	if n.hub.nets[n.addr] == n {
		delete(n.hub.nets, n.addr)
		n.hub.relink()
	}
	n.hub.mu.Unlock()
	return n.trans.Close()
}
