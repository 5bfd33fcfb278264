package server

import (
	"crypto/tls"
	"errors"
	"net"
)

// tlsListener wraps accepted connections in TLS. Unlike tls.NewListener it
// refuses a connection whose first byte is not a TLS handshake record before
// anything is written, so a plain-HTTP client gets no bytes back (net/http
// would otherwise answer "400 Bad Request" in clear text).
type tlsListener struct {
	net.Listener
	conf *tls.Config
}

// NewTLSListener is the client port's listener: ln's connections in TLS
// with conf, refusing a client whose first byte is not a TLS handshake
// record before anything is written (no plain-HTTP error page).
func NewTLSListener(ln net.Listener, conf *tls.Config) net.Listener {
	return &tlsListener{Listener: ln, conf: conf}
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(&handshakeGuard{Conn: c}, l.conf), nil
}

// errNotTLS is what a TLS handshake sees for a client that does not speak TLS.
var errNotTLS = errors.New("cairn: client did not start a TLS handshake (plain HTTP?); this port is HTTPS only")

type handshakeGuard struct {
	net.Conn
	checked bool
}

func (g *handshakeGuard) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if !g.checked && n > 0 {
		g.checked = true
		const recordTypeHandshake = 0x16
		if p[0] != recordTypeHandshake {
			g.Conn.Close()
			return 0, errNotTLS
		}
	}
	return n, err
}
