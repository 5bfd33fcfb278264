// Package managed keeps the serving certificates of the client listener
// with certmagic: a certmagic Issuer signing with the cluster CA
// (CAIssuer), optionally ACME, a certmagic Storage on the replicated key
// store with store-based locks (Storage), the Manager that obtains and
// renews, the zap-to-slog bridge certmagic logs through (ZapLogger), and
// the server configuration that serves the managed certificate
// (ServerConfig).
//
// Invariants:
//
//   - Every member shares the certificates, keys and ACME account through
//     Storage, and a renewal is done by one member at a time: locks are
//     create-only keys with a TTL, refreshed by their holder, whose
//     createdIndex is a fencing token.
//   - A certificate from CAIssuer carries the node's identity and never
//     outlives the CA; members never serve each other's.
//   - The listener works without a managed certificate: when none matches
//     or it is not valid, the node's own certificate is served. Client
//     certificates are verified exactly as by tlsconf.
//
// This is the only package of the module that imports certmagic, acmez
// and zap. It reaches the store through the KV interface, which the
// binary implements on a cluster member.
package managed
