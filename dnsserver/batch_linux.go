//go:build linux && (amd64 || arm64)

package dnsserver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg reads and one sendmmsg
// sends at most. Under load a socket holds many queries: reading them in
// one system call, and sending their answers in another, saves a pair of
// system calls (and a trip through the poller) per query, which is most
// of what a cached answer costs.
const batchSize = 32

// mmsghdr is struct mmsghdr of 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batch holds the buffers of one socket's recvmmsg and sendmmsg. It is
// owned by the socket's loop. Replies go to the sockaddr their query came
// from, byte for byte (same family, v4-mapped or not).
type batch struct {
	rc syscall.RawConn

	in     [batchSize]mmsghdr
	inIov  [batchSize]unix.Iovec
	inName [batchSize]unix.RawSockaddrInet6
	inBuf  [batchSize][readBufSize]byte

	out     [batchSize]mmsghdr
	outIov  [batchSize]unix.Iovec
	outName [batchSize]unix.RawSockaddrInet6
	outBuf  [batchSize][]byte
	nout    int
}

func newBatch(conn *net.UDPConn) (*batch, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batch{rc: rc}
	for i := range b.in {
		b.inIov[i].Base = &b.inBuf[i][0]
		b.inIov[i].SetLen(readBufSize)
		h := &b.in[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.inName[i]))
		h.Iov = &b.inIov[i]
		h.SetIovlen(1)
		b.out[i].hdr.Name = (*byte)(unsafe.Pointer(&b.outName[i]))
		b.out[i].hdr.Iov = &b.outIov[i]
		b.out[i].hdr.SetIovlen(1)
	}
	return b, nil
}

// recv reads at least one datagram, waiting for one, and returns how many.
func (b *batch) recv() (int, error) {
	for i := range b.in {
		b.in[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.in[i].len = 0
	}
	n, serr, err := mmsg(b.rc.Read, unix.SYS_RECVMMSG, unsafe.Pointer(&b.in[0]), batchSize)
	if err != nil {
		return 0, err
	}
	return n, serr
}

// mmsg makes the system call trap (recvmmsg or sendmmsg) on the socket
// with the n messages at vec, without blocking: do (the socket's
// RawConn.Read or Write) waits in the runtime's poller while it is not
// ready. It returns how many messages went through, the system call's
// error, and do's (the socket closed).
func mmsg(do func(func(fd uintptr) bool) error, trap uintptr, vec unsafe.Pointer, n int) (got int, serr, err error) {
	err = do(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(trap, fd, uintptr(vec), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			got = int(r)
		case unix.EAGAIN, unix.EINTR:
			return false
		default:
			serr = e
		}
		return true
	})
	return got, serr, err
}

// packet is the i-th datagram read and its source.
func (b *batch) packet(i int) ([]byte, netip.AddrPort) {
	return b.inBuf[i][:b.in[i].len], sockaddrAddrPort(&b.inName[i])
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	raw := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(sa))
	port := binary.BigEndian.Uint16(raw[2:4])
	switch sa.Family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	}
	return netip.AddrPort{}
}

// queue adds p as the reply to the i-th datagram read; p is copied.
func (b *batch) queue(p []byte, i int) error {
	if b.nout == batchSize {
		if err := b.flush(); err != nil {
			return err
		}
	}
	j := b.nout
	b.outBuf[j] = append(b.outBuf[j][:0], p...)
	b.outIov[j].Base = &b.outBuf[j][0]
	b.outIov[j].SetLen(len(p))
	b.outName[j] = b.inName[i]
	b.out[j].hdr.Namelen = b.in[i].hdr.Namelen
	b.nout++
	return nil
}

// flush sends the queued replies. A reply the kernel refuses (an
// unreachable source) is dropped, as a failed write would be.
func (b *batch) flush() error {
	var errs []error
	for sent := 0; sent < b.nout; {
		n, serr, err := mmsg(b.rc.Write, unix.SYS_SENDMMSG, unsafe.Pointer(&b.out[sent]), b.nout-sent)
		if err != nil {
			b.nout = 0
			return err
		}
		if serr != nil {
			errs = append(errs, serr)
			n = 1 // the first of the rest failed: skip it
		}
		sent += max(n, 1)
	}
	b.nout = 0
	return errors.Join(errs...)
}
