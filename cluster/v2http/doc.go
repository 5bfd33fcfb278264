// Package v2http serves the etcd 2.x v2 HTTP API on top of a raft node: the
// /v2/keys key space (reads, writes, watches), /v2/members, /v2/machines,
// /v2/stats/{self,store,leader}, /v2/auth (roles on certificate identities),
// /version, /health and /metrics, and etcd 0.4's lock and leader modules
// (/mod/v2/lock, /mod/v2/leader: mod.go), whose queues are ordinary keys
// below /_mod.
//
// The wire format is etcd 2.x's, byte for byte where clients can tell
// (reference/etcd-v2.md §1–§3): JSON written by encoding/json's Encoder
// (HTML escaping, trailing newline), etcd's error codes with their causes,
// status codes and headers. Deviations are listed on the functions that make
// them.
//
// Invariants:
//   - Writes go through Cluster.Propose; the handler never writes the store.
//   - Reads are linearizable (Cluster.ReadBarrier) unless the client asks
//     for stale=true; watches always serve the local replica.
//   - A watch never ends silently because the store dropped its watcher
//     (overflow, snapshot restore): it resumes from the watcher's next index.
//   - Every input is bounded: body, value, key length and depth, the
//     number of open watches per client, and (when configured) the request
//     rate per identity.
//   - With authorization enabled, a request outside its identity's roles
//     changes nothing, and a watch delivers only events its identity may
//     read (authcheck.go). The policy lives in the replicated store, under
//     the hidden prefix /_cairn, and is changed only through Propose.
//   - The handler starts no goroutines; every watch, and every wait in a
//     lock or election queue, runs in its request's goroutine and ends with
//     the request's context or Close.
package v2http
