//go:build linux

package clustertest

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Partition cuts the nodes listed off from the others: links between the
// two sides are refused and existing connections between them closed,
// while each side keeps talking within itself. It replaces any earlier
// partition.
func (p *Procs) Partition(nodes ...int) { p.net.partition(nodes, false) }

// Blackhole is Partition, except that the links between the sides swallow
// traffic instead of failing: connections are accepted and bytes read and
// dropped, as when packets are lost. Heal closes those connections.
func (p *Procs) Blackhole(nodes ...int) { p.net.partition(nodes, true) }

// Heal removes the partition.
func (p *Procs) Heal() { p.net.heal() }

// Isolated reports whether node i is on the cut-off side of a partition.
func (p *Procs) Isolated(i int) bool { return p.net.isolated(i) }

// StrayPeerConns lists the peer connections (source address -> proxy) that
// did not come from any node's IP: cairn dialed a peer without binding the
// host of --peer-bind-addr, which a partition cannot attribute.
func (p *Procs) StrayPeerConns() []string { return p.net.strayConns() }

// faultNet is the fault injector of a Procs: one TCP proxy in front of each
// node's peer port, the rule that says which links are up, and the open
// connections, so that a partition can cut them.
type faultNet struct {
	mu        sync.Mutex
	byIP      map[string]int // a node's IP -> its index
	cut       map[int]bool   // the nodes on the far side of a partition
	active    bool           // a partition is in force
	blackhole bool           // ... and swallows traffic rather than refusing it
	proxies   []*pxProxy
	links     map[*pxLink]struct{}
	strays    []string
	closed    bool
	discarded atomic.Int64 // bytes swallowed by blackholed links

	evMu   sync.Mutex
	events []string // the last pxEvents link events, oldest first
}

// pxEvents is how many link events a faultNet keeps for failure reports.
const pxEvents = 400

// event records what happened to a link, for the log of a failed test.
func (fn *faultNet) event(format string, args ...any) {
	e := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	fn.evMu.Lock()
	defer fn.evMu.Unlock()
	if len(fn.events) == pxEvents {
		fn.events = append(fn.events[:0], fn.events[1:]...)
	}
	fn.events = append(fn.events, e)
}

func (fn *faultNet) eventLog() []string {
	fn.evMu.Lock()
	defer fn.evMu.Unlock()
	return append([]string(nil), fn.events...)
}

func newFaultNet() *faultNet {
	return &faultNet{byIP: map[string]int{}, links: map[*pxLink]struct{}{}}
}

// pxProxy accepts connections for node owner and forwards them to target.
type pxProxy struct {
	fn     *faultNet
	owner  int
	ln     net.Listener
	target string
	wg     sync.WaitGroup
}

// pxLink is one proxied connection from node src (-1: unknown) to node dst.
type pxLink struct {
	fn       *faultNet
	src, dst int
	down     net.Conn // from the dialer
	cutOff   atomic.Bool

	mu     sync.Mutex
	up     net.Conn // to the target; nil while dialing or when blackholed
	closed bool
}

// listen starts the proxy for node owner, whose IP is ip, on listenAddr.
func (fn *faultNet) listen(owner int, ip, listenAddr, target string) (*pxProxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	px := &pxProxy{fn: fn, owner: owner, ln: ln, target: target}
	fn.mu.Lock()
	fn.byIP[ip] = owner
	fn.proxies = append(fn.proxies, px)
	fn.mu.Unlock()
	px.wg.Go(px.serve)
	return px, nil
}

func (px *pxProxy) addr() string { return px.ln.Addr().String() }

func (px *pxProxy) serve() {
	for {
		c, err := px.ln.Accept()
		if err != nil {
			return
		}
		px.wg.Go(func() { px.handle(c) })
	}
}

// allowedLocked says whether node src may reach node dst now.
func (fn *faultNet) allowedLocked(src, dst int) bool {
	if !fn.active {
		return true
	}
	return src >= 0 && fn.cut[src] == fn.cut[dst]
}

func (px *pxProxy) handle(c net.Conn) {
	fn := px.fn
	src := -1
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	l := &pxLink{fn: fn, dst: px.owner, down: c}
	fn.mu.Lock()
	if i, ok := fn.byIP[host]; ok {
		src = i
	} else {
		fn.strays = append(fn.strays, c.RemoteAddr().String()+"->"+c.LocalAddr().String())
	}
	l.src = src
	switch {
	case fn.closed:
		fn.mu.Unlock()
		c.Close()
		return
	case !fn.allowedLocked(src, px.owner) && !fn.blackhole:
		fn.mu.Unlock()
		fn.event("%s refused", l)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, like a refused connection
		}
		c.Close()
		return
	case !fn.allowedLocked(src, px.owner):
		l.cutOff.Store(true)
	}
	fn.links[l] = struct{}{}
	fn.mu.Unlock()
	defer fn.forget(l)

	if l.cutOff.Load() {
		fn.event("%s accepted into a blackhole", l)
		l.pump(nil, c, "dialer")
		return
	}
	up, err := net.DialTimeout("tcp", px.target, 5*time.Second)
	if err != nil { // the node is down: so is its peer port
		l.close("node unreachable: " + err.Error())
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		up.Close()
		return
	}
	l.up = up
	l.mu.Unlock()
	fn.event("%s opened", l)
	var wg sync.WaitGroup
	wg.Go(func() { l.pump(up, c, "dialer") })
	l.pump(c, up, "node")
	wg.Wait()
}

// String names the link by its nodes and the dialer's address.
func (l *pxLink) String() string {
	src := "?"
	if l.src >= 0 {
		src = "n" + strconv.Itoa(l.src)
	}
	return fmt.Sprintf("%s(%s)->n%d", src, l.down.RemoteAddr(), l.dst)
}

// pump copies src to dst until either fails, dropping what it reads while
// the link is cut off, then closes the link. from names src's side.
func (l *pxLink) pump(dst, src net.Conn, from string) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if l.cutOff.Load() || dst == nil {
				l.fn.discarded.Add(int64(n))
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				l.close(fmt.Sprintf("writing what the %s sent: %v", from, werr))
				return
			}
		}
		if err != nil {
			l.close(fmt.Sprintf("the %s side ended: %v", from, err))
			return
		}
	}
}

// close closes both ends of l once, recording why.
func (l *pxLink) close(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	l.fn.event("%s closed: %s", l, why)
	l.down.Close()
	if l.up != nil {
		l.up.Close()
	}
}

func (fn *faultNet) forget(l *pxLink) {
	fn.mu.Lock()
	delete(fn.links, l)
	fn.mu.Unlock()
}

// partition puts nodes on the far side and applies the new rule to open
// links: a link now forbidden is closed, or swallowed with blackhole; a
// swallowed link now allowed is closed, since bytes were lost from it.
func (fn *faultNet) partition(nodes []int, blackhole bool) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.active, fn.blackhole = true, blackhole
	fn.cut = map[int]bool{}
	for _, i := range nodes {
		fn.cut[i] = true
	}
	fn.event("partition: %v cut off from the rest (blackhole %v)", nodes, blackhole)
	fn.applyLocked()
}

func (fn *faultNet) heal() {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.active, fn.blackhole, fn.cut = false, false, nil
	fn.event("heal")
	fn.applyLocked()
}

func (fn *faultNet) applyLocked() {
	for l := range fn.links {
		switch ok := fn.allowedLocked(l.src, l.dst); {
		case ok && l.cutOff.Load():
			l.close("was blackholed, now allowed")
		case !ok && fn.blackhole:
			if !l.cutOff.Swap(true) {
				fn.event("%s blackholed", l)
			}
		case !ok:
			l.close("partitioned")
		}
	}
}

func (fn *faultNet) isolated(i int) bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.active && fn.cut[i]
}

func (fn *faultNet) strayConns() []string {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return append([]string(nil), fn.strays...)
}

// close stops every proxy and closes every link.
func (fn *faultNet) close() {
	fn.mu.Lock()
	fn.closed = true
	proxies := fn.proxies
	for l := range fn.links {
		l.close("proxies closed")
	}
	fn.mu.Unlock()
	for _, px := range proxies {
		px.ln.Close()
		px.wg.Wait()
	}
}
