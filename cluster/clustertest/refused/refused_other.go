//go:build !unix

package refused

import (
	"net"
	"testing"
)

// Addr returns the address of a listener it closed at once: connections
// are refused, but, unlike on unix, another process may take the port.
func Addr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
