package server

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the client port's limits ([limits]).
const (
	DefaultReadTimeout    = 30 * time.Second
	DefaultMaxConnections = 10000
)

// limitListener caps the connections open at once on the client port
// (limits.max_connections). Unlike netutil.LimitListener, which stops
// accepting and leaves the extra clients waiting in the kernel's backlog,
// it accepts and closes a connection over the cap at once, before TLS, and
// counts it: a client sees its connection refused instead of hanging, and
// the operator sees the refusals in cairn_client_connections_refused_total.
type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused prometheus.Counter
}

func newLimitListener(ln net.Listener, max int, reg prometheus.Registerer) (*limitListener, error) {
	l := &limitListener{
		Listener: ln,
		max:      int64(max),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_client_connections_refused_total",
			Help: "Connections to the client port closed at once because limits.max_connections were open.",
		}),
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_client_connections",
		Help: "Connections open on the client port.",
	}, func() float64 { return float64(l.open.Load()) })
	for _, c := range []prometheus.Collector{l.refused, open} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: c, release: func() { l.open.Add(-1) }}, nil
		}
		l.open.Add(-1)
		l.refused.Inc()
		c.Close()
	}
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
