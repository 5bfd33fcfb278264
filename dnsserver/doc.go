// Package dnsserver is Cairn's authoritative DNS responder for service
// discovery: a pure answer function (Responder.Answer) over a Source of
// registrations, and a miekg/dns server (Server) that serves it on UDP and TCP.
//
// Invariants:
//
//   - Answer never touches a socket or the clock: the time is an argument,
//     and the only state it reads is its Config and its Source. Everything
//     that a query can trigger is therefore testable without a network.
//   - The responder is authoritative for exactly one zone (Config.Domain)
//     and for PTR records of registered addresses. Everything else is
//     REFUSED: it is not a resolver and never recurses.
//   - A live record is never answered with TTL 0, and never outlives its key:
//     the TTL is min(record ttl, remaining key TTL rounded up, MaxTTL), and an
//     instance whose key has expired (but which the index has not dropped
//     yet) is treated as absent.
//   - A UDP response never exceeds what the client advertised (512 without
//     EDNS0) nor Config.UDPSize; records are dropped whole, never cut, and
//     TC is set whenever an answer or authority record was dropped. TCP
//     responses are complete up to the 65535-byte DNS limit, past which
//     records are dropped the same way.
//   - Every record fits in a message: a TXT text is cut at
//     discovery.MaxTextBytes (which the API enforces on writes), whatever
//     the Source holds.
//   - A panic while answering, or an answer that cannot be packed, becomes
//     SERVFAIL for that query; the server keeps running.
//
// The package imports only discovery from this module (for Instance and
// Record); the Source interface is defined here, by its consumer.
package dnsserver
