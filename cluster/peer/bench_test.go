package peer

import (
	"context"
	"testing"

	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// BenchmarkCall measures a forwarding round trip over mutual TLS on
// loopback with a handler that answers at once: "mux" is the multiplexed
// protocol, "forward" the one-request-per-connection protocol of members
// before it (the peer refuses protoMux). "serial" is one caller at a time
// (a 1-client latency), "parallel" 64 callers (throughput).
//
//	go test ./cluster/peer -run - -bench Call -benchmem
func BenchmarkCall(b *testing.B) {
	p := tlstest.NewPKI(b)
	mA := benchMaterial(b, p, "a")
	mB := benchMaterial(b, p, "b")
	req := make([]byte, 200) // about a forwarded 100-byte put
	for _, proto := range []string{"mux", "forward"} {
		a := newTestNetwork(b, mA, "127.0.0.1:0")
		s := newTestNetwork(b, mB, "127.0.0.1:0")
		s.noMux = proto == "forward"
		s.Serve(func(_ context.Context, req []byte) []byte { return req[:150] })
		addr := s.Addr().String()
		if _, err := a.Call(context.Background(), addr, req); err != nil {
			b.Fatal(err)
		}
		b.Run(proto+"/serial", func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Call(context.Background(), addr, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(proto+"/parallel", func(b *testing.B) {
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.Call(context.Background(), addr, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
