package dnsserver

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func benchResponder(b *testing.B, insts []discovery.Instance) *Responder {
	b.Helper()
	r, err := NewResponder(Config{}, &fakeSource{insts: insts}) // default shuffle
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkAnswerSRV60: SRV of a 60-instance service, complete over TCP
// (60 SRV + 60 glue) and truncated to 512 bytes over UDP.
func BenchmarkAnswerSRV60(b *testing.B) {
	r := benchResponder(b, bigService(60))
	req := query("big.cairn.internal.", dns.TypeSRV)
	for _, proto := range []string{TCP, UDP} {
		b.Run(proto, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m := r.Answer(req, t0, proto); len(m.Answer) == 0 {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkAnswerA: A of one instance among 60 in its service, the common
// query.
func BenchmarkAnswerA(b *testing.B) {
	r := benchResponder(b, bigService(60))
	req := query("big-7.big.cairn.internal.", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if m := r.Answer(req, t0, UDP); len(m.Answer) != 1 {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkServerUDP: A queries end to end over loopback UDP, one socket per
// client goroutine; qps is what the server sustained, with the answer cache
// (a Source with a Generation, as discovery.Index) and without.
func BenchmarkServerUDP(b *testing.B) {
	b.Run("cached", func(b *testing.B) { benchServerUDP(b, newGenSource(bigService(60)...)) })
	b.Run("uncached", func(b *testing.B) { benchServerUDP(b, &fakeSource{insts: bigService(60)}) })
}

func benchServerUDP(b *testing.B, src Source) {
	s, err := New(Config{}, src, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	addr := s.Addr()

	benchQueries(b, func() (*dns.Conn, error) { return dns.Dial("udp", addr) })
}

// BenchmarkServerDoT: A queries over DNS over TLS, one persistent
// connection per client goroutine (TLS 1.3, ECDSA P-256); qps is what the
// server sustained, handshakes excluded.
func BenchmarkServerDoT(b *testing.B) {
	p := tlstest.NewPKI(b)
	s, err := New(Config{}, newGenSource(bigService(60)...), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srvConf := &tls.Config{Certificates: []tls.Certificate{*p.NodeMaterial.Certificate()}, NextProtos: []string{"dot"}}
	if err := s.ServeTLS(tls.NewListener(ln, srvConf)); err != nil {
		b.Fatal(err)
	}
	cliConf := tlstest.ClientConfig(tlstest.Pool(p.CA.Cert))
	cliConf.ServerName = "127.0.0.1"

	benchQueries(b, func() (*dns.Conn, error) { return dns.DialWithTLS("tcp-tls", s.TLSAddr(), cliConf) })
}

// benchQueries runs 4 clients per GOMAXPROCS (enough to keep the server
// busy), each on its own connection from dial, asking an A query and
// checking its answer, and reports the rate.
func benchQueries(b *testing.B, dial func() (*dns.Conn, error)) {
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		c, err := dial()
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		req := query("big-7.big.cairn.internal.", dns.TypeA)
		for pb.Next() {
			if err := c.WriteMsg(req); err != nil {
				b.Error(err)
				return
			}
			m, err := c.ReadMsg()
			if err != nil || len(m.Answer) != 1 {
				b.Errorf("%v %v", m, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
}
