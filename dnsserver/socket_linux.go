package dnsserver

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort is whether several UDP sockets can share a port here.
const reusePort = true

// udpReadBuffer is the receive buffer asked for each UDP socket.
const udpReadBuffer = 4 << 20

// listenUDP binds a UDP socket to addr with SO_REUSEPORT, so that further
// sockets of this process (same user) can bind the same port and the
// kernel spreads queries over them by source.
func listenUDP(addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			// A burst of queries must not overflow the socket while its
			// loop answers: the default (~200 KB, ~270 small datagrams)
			// dropped 0.1% of dnsperf's queries. FORCE passes
			// net.core.rmem_max when the process may (CAP_NET_ADMIN);
			// otherwise the kernel caps the plain request at rmem_max.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpReadBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, udpReadBuffer)
			}
		})
		if err == nil {
			err = serr
		}
		return err
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// setSessionOptions asks the kernel for the destination address of each
// datagram (IP_PKTINFO, IPV6_RECVPKTINFO), which a socket bound to a
// wildcard address needs to reply from the address it was asked on. As
// miekg/dns does, either option may fail (an IPv4-only or IPv6-only
// socket), not both.
func setSessionOptions(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var err4, err6 error
	if err := rc.Control(func(fd uintptr) {
		err4 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		err6 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
	}); err != nil {
		return err
	}
	if err4 != nil && err6 != nil {
		return err4
	}
	return nil
}
