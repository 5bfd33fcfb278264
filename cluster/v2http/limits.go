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

// watchLimiter counts the open watch requests of each client.
type watchLimiter struct {
	max    int
	mu     sync.Mutex
	counts map[string]int
}

func newWatchLimiter(max int) *watchLimiter {
	return &watchLimiter{max: max, counts: make(map[string]int)}
}

// acquire takes a slot for client, or reports false when it has max open.
func (l *watchLimiter) acquire(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[client] >= l.max {
		return false
	}
	l.counts[client]++
	return true
}

func (l *watchLimiter) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[client] <= 1 {
		delete(l.counts, client)
		return
	}
	l.counts[client]--
}
