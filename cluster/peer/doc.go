// Package peer is a member's peer port: one mutual-TLS listener that
// carries raft's RPCs (as raft's NetworkTransport over a shared stream
// layer) and Cairn's request/answer frames (forwarded proposals, reads and
// joins), both only between node identities.
//
// A Network implements cluster.Network. After the TLS handshake the dialer
// sends one byte naming the protocol; forwarding connections are pooled per
// peer and answered one frame at a time. Invariants: every connection, in
// either direction and of either protocol, is closed by Close, so a closed
// Network leaves no goroutine behind; a Call that fails before its request
// left wraps cluster.ErrNotSent, so a proposal can be retried safely.
package peer
