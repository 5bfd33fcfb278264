// Package tlsauth is Cairn's certificate layer: a small PKI (a cluster CA
// that issues node and client certificates), the development PKI made on a
// first start, identities read from verified certificates, the
// authorization rules (roles on key patterns, authz.go), the tls.Config
// builders used by every listener and dialer, and certmagic's issuer and
// storage adapters (certmagic_*.go; the storage reaches the replicated
// store through the KV interface that cmd wires in).
//
// Invariants:
//
//   - There is no way to build a configuration that skips verification. A
//     server configuration always requires a client certificate that chains
//     to the cluster CA pool with the clientAuth extended key usage; a client
//     configuration always verifies the server against the same pool.
//   - The peer port (raft, forwarding) speaks ALPN "cairn-peer" only, and
//     both of its sides refuse a verified peer whose identity is not a node
//     (IsNode).
//   - TLS 1.3 is the default minimum; TLS 1.2 is allowed only when asked for
//     explicitly, and then only with ECDHE AEAD cipher suites. Nothing older
//     is ever negotiated.
//   - Private keys are written with mode 0600 through a temporary file and a
//     rename, so a reader never sees a partial key. A key file that grants
//     any access to group or others is refused when loaded.
//   - An identity comes from a certificate's first SPIFFE URI SAN
//     (spiffe://<trust-domain>/node/<name> or .../client/<name>) or, when
//     the certificate has no SPIFFE URI SAN, from its CN. A SPIFFE URI of
//     another trust domain is an error, never a fallback to the CN.
//   - Loaded material (CA pool, key pair and CRLs) is replaced as a whole
//     and atomically. Each handshake uses the material current when it
//     starts; a reload that fails keeps the previous material. A Reloader
//     replaces a set of materials (both ports) all or nothing, on request
//     (SIGHUP) or when their files change (Watch); connections already
//     established are never touched.
//   - With a CRL file, a certificate of a verified chain that the CRL of its
//     issuer lists is refused at every handshake, resumptions included, by
//     servers and clients alike. A CRL past its next update is still
//     applied (and warned about): a stale list does not un-revoke anything.
//
// The package imports no other package of this module; beyond the standard
// library it uses go-pkcs12 (PKCS#12 bundles), fsnotify (watching files),
// certmagic and zap (managed serving certificates).
package tlsauth
