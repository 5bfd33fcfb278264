package refused

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

func TestAddrRefusesAndStaysTaken(t *testing.T) {
	addr := Addr(t)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("another listener could take %s", addr)
	}
}
