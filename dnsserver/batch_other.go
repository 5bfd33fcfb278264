//go:build !(linux && (amd64 || arm64))

package dnsserver

import (
	"errors"
	"net"
	"net/netip"
)

// batch is recvmmsg/sendmmsg batching, on 64-bit Linux only; elsewhere a
// loop reads and writes one datagram at a time.
type batch struct{}

func newBatch(*net.UDPConn) (*batch, error) {
	return nil, errors.New("dnsserver: no batched UDP on this system")
}

func (*batch) recv() (int, error)                  { return 0, errors.ErrUnsupported }
func (*batch) packet(int) ([]byte, netip.AddrPort) { return nil, netip.AddrPort{} }
func (*batch) queue([]byte, int) error             { return errors.ErrUnsupported }
func (*batch) flush() error                        { return nil }
