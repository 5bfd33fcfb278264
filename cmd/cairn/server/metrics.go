package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// newMetricsServer is the plain-HTTP metrics port (metrics_addr): /metrics
// and /health of api, the client API's handler, and nothing else, for
// Prometheus and probes that have no client certificate (etcd's
// --listen-metrics-urls). Neither path reveals a key or a value.
func newMetricsServer(api http.Handler, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", api)
	mux.Handle("/health", api)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// certExpiry is cairn_tls_certificate_expiry_seconds{use}: the seconds
// until the NotAfter of the certificates this member serves and trusts,
// read at each scrape, so that reloads and renewals show at once.
//
//	use="serving"    the certificate the client port serves (managed or cert_file)
//	use="peer"       the node certificate of the peer port
//	use="client-ca"  the first to expire of the CAs client certificates chain to (ca_file)
//	use="peer-ca"    the same for the peer port (peer.ca_file, default ca_file)
type certExpiry struct {
	desc                   *prometheus.Desc
	serving                *tls.Config
	hello                  func() *tls.ClientHelloInfo
	material, peerMaterial *tlsconf.Material
}

// newCertExpiry measures the serving certificate as a client dialing
// advertised (host:port) at the client port bound gets it.
func newCertExpiry(bound net.Addr, advertised string, serving *tls.Config, material, peerMaterial *tlsconf.Material) *certExpiry {
	host, _, _ := net.SplitHostPort(advertised)
	local := bound
	ip := net.ParseIP(host)
	if ip != nil && !ip.IsUnspecified() {
		local = &net.TCPAddr{IP: ip}
	}
	return &certExpiry{
		desc: prometheus.NewDesc("cairn_tls_certificate_expiry_seconds",
			"Seconds until the certificate expires (negative: expired), by use: serving (client port), peer (peer port), client-ca and peer-ca (the first CA of the bundle to expire).",
			[]string{"use"}, nil),
		serving: serving,
		hello: func() *tls.ClientHelloInfo {
			h := &tls.ClientHelloInfo{Conn: addrConn{local: local}}
			if ip == nil {
				h.ServerName = host
			}
			return h
		},
		material: material, peerMaterial: peerMaterial,
	}
}

func (c *certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *certExpiry) Collect(ch chan<- prometheus.Metric) {
	emit := func(use string, notAfter time.Time) {
		if !notAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, time.Until(notAfter).Seconds(), use)
		}
	}
	if cert, err := c.serving.GetCertificate(c.hello()); err == nil {
		emit("serving", leafNotAfter(cert))
	}
	emit("peer", leafNotAfter(c.peerMaterial.Certificate()))
	emit("client-ca", bundleNotAfter(c.material.Files().CAFile))
	emit("peer-ca", bundleNotAfter(c.peerMaterial.Files().CAFile))
}

func leafNotAfter(c *tls.Certificate) time.Time {
	if c == nil || len(c.Certificate) == 0 {
		return time.Time{}
	}
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return time.Time{}
		}
	}
	return leaf.NotAfter
}

// bundleNotAfter is the earliest NotAfter of the certificates of a PEM
// bundle, re-read at each scrape (the material keeps only a pool).
func bundleNotAfter(file string) time.Time {
	b, err := os.ReadFile(file)
	if err != nil {
		return time.Time{}
	}
	var first time.Time
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return first
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil && (first.IsZero() || c.NotAfter.Before(first)) {
			first = c.NotAfter
		}
	}
}

// addrConn is the connection of a made-up handshake: certmagic reads only
// its addresses (the local IP picks an IP certificate).
type addrConn struct {
	net.Conn // nil: no other method is called
	local    net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// newHandshakeLog counts refused handshakes in
// cairn_tls_handshake_failures_total{port,reason} (every port and reason
// present from the start, at 0) and logs them through logger at a bounded
// rate.
func newHandshakeLog(reg prometheus.Registerer, logger *slog.Logger) *tlsconf.HandshakeLog {
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_tls_handshake_failures_total",
		Help: "TLS handshakes refused, by port (client, peer) and reason.",
	}, []string{"port", "reason"})
	for _, port := range []string{"client", "peer"} {
		for _, r := range tlsconf.HandshakeReasons {
			failures.WithLabelValues(port, r)
		}
	}
	reg.MustRegister(failures)
	return &tlsconf.HandshakeLog{Logger: logger, Count: func(port, reason string) { failures.WithLabelValues(port, reason).Inc() }}
}
