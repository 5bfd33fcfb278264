package clustertest

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// FreePortOn returns a TCP port on ip that was free a moment ago: it
// listens on port 0 and closes the listener. It never returns a port it
// returned before in this process (on any ip): the kernel may hand the
// same port out twice in a row, and a member that asks for a client and a
// peer port must get two. Another process may still take the port before
// the caller binds it; that is rare on a test machine.
func FreePortOn(t testing.TB, ip string) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("free port on %s (is 127/8 routed to lo?): %v", ip, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, used := handedOut.LoadOrStore(port, true); !used {
			return strconv.Itoa(port)
		}
	}
	t.Fatalf("free port on %s: the kernel kept returning ports already handed out", ip)
	return ""
}

// handedOut holds every port FreePortOn returned.
var handedOut sync.Map
