// Package discovery is Cairn's service-discovery schema on the key store:
// SkyDNS records (Record, ParseRecord), the mapping between keys and DNS
// names (Config), the validation of writes under the discovery prefix
// (Config.Validate), a live in-memory index of registrations that the DNS
// responder answers from (Index), the catalog of registrations as an
// operator lists them (Config.Catalog, ServiceCatalog, Services,
// ServiceNames), and the registrar that keeps one registration alive
// (Registrar, at the key of Config.InstanceKey) through the small client
// interface it declares (Keys), which cmd satisfies with cluster/v2client,
// while a Consul-style health check passes (HTTPCheck, TCPCheck,
// ExecCheck).
//
// Layout, as SkyDNS's: the record of web-1.web.cairn.internal. is the key
// /skydns/internal/cairn/web/web-1, a JSON object such as
// {"host":"10.0.0.5","port":8080}, usually with a key TTL refreshed by
// heartbeats. A name stands for its own record and every record below it.
//
// Invariants:
//   - discovery imports store and the standard library only.
//   - The Index reflects a prefix of the store's history: after applying the
//     event of index i it holds exactly the valid records of the store at i
//     (or a rebuild's newer state), never a mix of a restored and an older
//     tree. Hidden keys (a segment starting with '_', as in _tcp) and TTL
//     refreshes count like any other write.
//   - Names are lowercase, fully qualified and in presentation format; keys
//     differing only in letter case are instances of the same name.
package discovery
