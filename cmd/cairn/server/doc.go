// Package server is a Cairn member as one value: the raft node (cluster),
// the etcd v2 API on the client port (cluster/v2http over HTTPS with
// mandatory client certificates), the DNS responder over the discovery
// index, managed serving certificates (certmagic on the replicated store),
// TLS reloads, and the optional plain-HTTP metrics port.
//
// Config holds every setting; Load resolves it from flags, CAIRN_*
// variables, a TOML file and defaults (viper), WriteTOML prints it back
// as a file Load reads into the same Config. New binds every port (port 0
// works and is advertised as the port bound) and starts the node; Run
// serves until its context ends; Close stops everything and is
// idempotent. `cairn serve` and tests boot the same type; servertest
// starts one for a test in a line.
//
// Invariants: there is no plaintext listener for the API (the metrics
// port serves /metrics and /health only); every goroutine New or Run
// starts has stopped when Close returns.
package server
