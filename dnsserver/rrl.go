package dnsserver

import (
	"net/netip"
	"time"
)

// Source networks that share one response-rate account, as BIND's RRL
// defaults (ipv4-prefix-length 24, ipv6-prefix-length 56).
const (
	rrlPrefix4 = 24
	rrlPrefix6 = 56
	// rrlEntries bounds the networks one socket tracks; past it, accounts
	// that are full again (idle for a second or more) are forgotten, and
	// if none is, all are: a spoofed flood from many networks must not
	// grow memory.
	rrlEntries = 16384
)

// rrlVerdict is what response-rate limiting decides for one response.
type rrlVerdict uint8

const (
	rrlSend rrlVerdict = iota
	rrlSlip
	rrlDrop
)

// rateLimiter is one UDP socket's response-rate accounts: a token bucket
// per source network, refilled at rate per second up to rate. Owned by its
// loop: no lock.
type rateLimiter struct {
	rate     float64 // responses per second and burst
	slip     int     // every slip-th limited response is slipped; <0: none
	loopback bool    // loopback sources are limited too
	accounts map[netip.Prefix]*rrlAccount
}

type rrlAccount struct {
	tokens  float64
	last    int64 // UnixNano of the last refill
	limited int   // limited responses so far, for the slip ratio
}

func newRateLimiter(cfg Config) *rateLimiter {
	if cfg.RateLimit <= 0 {
		return nil
	}
	return &rateLimiter{
		rate:     float64(cfg.RateLimit),
		slip:     cfg.RateSlip,
		loopback: cfg.RateLimitLoopback,
		accounts: make(map[netip.Prefix]*rrlAccount),
	}
}

// check accounts for one response to src at now.
func (r *rateLimiter) check(src netip.Addr, now time.Time) rrlVerdict {
	if r == nil || (!r.loopback && src.IsLoopback()) {
		return rrlSend
	}
	bits := rrlPrefix6
	if src.Is4() {
		bits = rrlPrefix4
	}
	net, _ := src.Prefix(bits)
	t := now.UnixNano()
	a := r.accounts[net]
	if a == nil {
		if len(r.accounts) >= rrlEntries {
			r.prune(t)
		}
		a = &rrlAccount{tokens: r.rate, last: t}
		r.accounts[net] = a
	}
	if elapsed := t - a.last; elapsed > 0 {
		a.tokens = min(r.rate, a.tokens+float64(elapsed)*r.rate/1e9)
		a.last = t
	}
	if a.tokens >= 1 {
		a.tokens--
		a.limited = 0
		return rrlSend
	}
	a.limited++
	if r.slip > 0 && a.limited%r.slip == 0 {
		return rrlSlip
	}
	return rrlDrop
}

// prune forgets the accounts that would be full at t, or all of them.
func (r *rateLimiter) prune(t int64) {
	for k, a := range r.accounts {
		if a.tokens+float64(t-a.last)*r.rate/1e9 >= r.rate {
			delete(r.accounts, k)
		}
	}
	if len(r.accounts) >= rrlEntries {
		clear(r.accounts)
	}
}

// allowed reports whether src may be answered under allow (empty: all).
func allowed(allow []netip.Prefix, src netip.Addr) bool {
	if len(allow) == 0 {
		return true
	}
	src = src.Unmap()
	for _, p := range allow {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// slipResponse writes into buf the slipped answer to the plain query p: its
// header and question, QR and TC set, no records (RFC 1035 §4.1.1: the
// client retries over TCP).
func slipResponse(buf []byte, p []byte, q *plainQuery) []byte {
	n := dnsHeaderLen + len(q.question)
	buf = append(buf[:0], p[:n]...)
	buf[2] |= byte((bitQR | bitTC) >> 8)
	buf[3] &= byte(bitCD) // keep CD; RA, Z, AD and RCODE 0
	buf[10], buf[11] = 0, 0
	return buf
}
