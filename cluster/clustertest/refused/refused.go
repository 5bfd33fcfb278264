//go:build unix

// Package refused gives tests a loopback address where connections are
// refused. Closing a listener to free its port is not enough: go test runs
// packages in parallel, and another test process may bind that port and
// answer there before the test connects (seen as a failover test reading
// an empty answer from a stranger).
package refused

import (
	"net/netip"
	"syscall"
	"testing"
)

// Addr returns 127.0.0.1:PORT of a TCP socket bound to a free port and
// never listening: connections to it are refused, and the port stays
// taken, so nobody else serves there, until the test ends.
func Addr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port)).String()
}
