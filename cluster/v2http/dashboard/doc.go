// Package dashboard serves Cairn's web dashboard at /mod/dashboard/ (etcd
// 0.3's path): static HTML, CSS and JavaScript modules embedded in the
// binary, and two small read-only JSON endpoints the browser cannot get
// from the etcd v2 API alone.
//
// Everything else the page shows it reads with the same v2 API a client
// uses, from the same origin and with the same client certificate: keys
// (listed one directory at a time), registrations under the discovery
// prefix, lock and election queues under /_mod, and a recursive watch for
// the live event feed.
//
//	GET /mod/dashboard              302 to /mod/dashboard/
//	GET /mod/dashboard/             the page (index.html)
//	GET /mod/dashboard/static/...   the embedded assets
//	GET /mod/dashboard/api/cluster  this member's raft view, the members,
//	                                each member's /health and serving
//	                                certificate expiry (probed over mTLS
//	                                with this member's own certificate)
//	GET /mod/dashboard/api/whoami   the identity of the request's client
//	                                certificate and what it may do
//
// Invariants:
//   - Read-only: the package never writes to the store; writes made from
//     the page go through /v2/keys and its authorization.
//   - No external network: the page loads nothing from another origin
//     (Content-Security-Policy 'self').
//   - Authorization is not decided here: Config.Whoami is computed by the
//     keys API's own code (package v2http).
//   - The probes of other members are bounded by ProbeTimeout and run
//     concurrently, one round per /api/cluster request.
package dashboard
