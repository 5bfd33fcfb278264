// Package tlstest holds test helpers for code that speaks Cairn's mTLS: a
// test PKI (a CA kept in memory, node and client certificates written to a
// test's temporary directory and loaded as tlsconf.Material) and the one
// TLS handshake helper every test uses.
//
// Invariants: nothing here is used outside tests; every helper fails the
// test (t.Fatal) rather than returning an error; identities are in the
// trust domain TrustDomain, CAs are valid for a day and leaves for an hour;
// Handshake never waits for time to pass, only for the handshake (bounded,
// so that a hang fails rather than stalls), and stops every goroutine and
// connection it starts before it returns.
package tlstest
