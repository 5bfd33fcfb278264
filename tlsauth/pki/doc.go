// Package pki makes and reads Cairn's certificates and keys: the cluster
// CA (NewCA, LoadCA), node, client and serving certificates it issues,
// their renewal (Renew) and revocation lists (Revoke, RevocationList),
// the development PKI made on a first start (EnsureDev, EnsureNodeCert),
// PEM, DER and PKCS#12 files, what `cairn cert inspect` reports about a
// certificate, certificate lifetimes ("90d", "1y") and when a certificate
// is due for renewal (RenewalWarning, the rule of managed certificates too).
//
// Invariants:
//
//   - Keys are ECDSA P-256, written as PKCS#8. Certificates carry their
//     identity as a SPIFFE URI SAN (tlsauth.SPIFFEID) and never outlive
//     the CA that issued them.
//   - Private keys (and PKCS#12 bundles, which hold one) are written with
//     mode 0600 through a temporary file, a sync and a rename, so a reader
//     never sees a partial file; certificates and CRLs the same way with
//     mode 0644. A key file that grants any access to group or others is
//     refused when read.
//   - Nothing is overwritten by surprise: InitCA never replaces a CA,
//     Issue replaces existing files only with Force (and never the CA's),
//     Renew replaces only the pair it is given once it has checked that
//     the CA issued the certificate and that the key is its key, and a
//     refused request leaves every file as it was.
//   - A CRL number grows with every list a CA signs, and a list written
//     by Revoke keeps every entry of the one it replaces.
//   - Every file read is bounded (MaxFileSize).
//
// Errors carry the "tlsauth: " prefix of the certificate layer and wrap
// the sentinels of errors.go (test with errors.Is).
package pki
