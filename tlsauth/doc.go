// Package tlsauth is who a certificate speaks for and what it may do:
// identities read from verified certificates (Identity, IdentityFromCert,
// PeerIdentity, IsNode) and the authorization rules (Policy, Permissions,
// roles on key patterns; authz.go).
//
// Its subpackages do the rest of the certificate layer, one job each:
// pki makes and reads certificates, keys and CRLs; tlsconf builds the
// tls.Config of every listener and dialer from files and reloads them;
// managed adapts certmagic (serving certificates kept in the replicated
// store); tlstest helps tests.
//
// Invariants:
//
//   - An identity comes from a certificate's first SPIFFE URI SAN
//     (spiffe://<trust-domain>/node/<name> or .../client/<name>) or, when
//     the certificate has no SPIFFE URI SAN, from its CN. A SPIFFE URI of
//     another trust domain is an error, never a fallback to the CN.
//   - Only node identities (IsNode: a node URI SAN, or a CN an operator
//     listed) are nodes, and a node is always root.
//   - A Policy is immutable once handed out; its zero value is
//     authorization disabled, under which everyone is root.
//
// The package imports only the standard library: the HTTP API reads
// identities and rules without pulling in certmagic, acmez or zap.
package tlsauth
