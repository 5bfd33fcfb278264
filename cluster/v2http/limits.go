package v2http

import (
	"net"
	"net/http"
	"sync"
)

// DefaultClientID names the client of r for per-client limits: the subject
// CN and serial number of its verified TLS certificate ("cert:<CN>/<serial
// hex>"), or, without one, the host of RemoteAddr ("addr:<host>"). The port
// is left out on purpose: an HTTP/1.1 client opens one connection per
// concurrent long poll, so a per-connection name would never reach a limit.
func DefaultClientID(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		return "cert:" + c.Subject.CommonName + "/" + c.SerialNumber.Text(16)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// watchLimiter counts the open watch requests of each client and of all
// clients together.
type watchLimiter struct {
	max      int // per client
	maxTotal int // all clients
	mu       sync.Mutex
	counts   map[string]int
	total    int
}

func newWatchLimiter(max, maxTotal int) *watchLimiter {
	return &watchLimiter{max: max, maxTotal: maxTotal, counts: make(map[string]int)}
}

// Why acquire refused a watch.
const (
	watchOK = iota
	watchClientFull
	watchMemberFull
)

// acquire takes a slot for client, or reports which limit is reached: the
// client's own (max open) or the member's (maxTotal open in all).
func (l *watchLimiter) acquire(client string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[client] >= l.max {
		return watchClientFull
	}
	if l.total >= l.maxTotal {
		return watchMemberFull
	}
	l.counts[client]++
	l.total++
	return watchOK
}

func (l *watchLimiter) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.counts[client] <= 1 {
		delete(l.counts, client)
		return
	}
	l.counts[client]--
}
