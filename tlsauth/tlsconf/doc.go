// Package tlsconf builds the tls.Config of every Cairn listener and dialer
// from files (Files, Material, Options), verifies peers (the peer port
// speaks only to nodes), checks certificates against CRLs, and reloads
// the material on request (SIGHUP) or when its files change (Reloader).
//
// Invariants:
//
//   - There is no way to build a configuration that skips verification. A
//     server configuration always requires a client certificate that
//     chains to the cluster CA pool with the clientAuth extended key
//     usage; a client configuration always verifies the server against
//     the same pool.
//   - The peer port (raft, forwarding) speaks ALPN "cairn-peer" only, and
//     both of its sides refuse a verified peer whose identity is not a
//     node (tlsauth.IsNode).
//   - TLS 1.3 is the default minimum; TLS 1.2 is allowed only when asked
//     for explicitly, and then only with ECDHE AEAD cipher suites. Nothing
//     older is ever negotiated.
//   - Loaded material (CA pool, key pair and CRLs) is replaced as a whole
//     and atomically. Each handshake uses the material current when it
//     starts; a reload that fails keeps the previous material. A Reloader
//     replaces a set of materials (both ports) all or nothing, on request
//     or when their files change (Watch); connections already established
//     are never touched.
//   - With a CRL file, a certificate of a verified chain that the CRL of
//     its issuer lists is refused at every handshake, resumptions
//     included, by servers and clients alike. A CRL past its next update
//     is still applied (and warned about): a stale list does not un-revoke
//     anything.
package tlsconf
