//go:build !linux

package dnsserver

import (
	"errors"
	"net"
)

// reusePort is whether several UDP sockets can share a port here: only
// Linux is supported; elsewhere one socket serves UDP.
const reusePort = false

func listenUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", ua)
}

// setSessionOptions: replies from wildcard-bound sockets leave from the
// kernel's choice of source address outside Linux, as miekg/dns's.
func setSessionOptions(*net.UDPConn) error {
	return errors.New("dnsserver: no IP_PKTINFO on this system")
}
