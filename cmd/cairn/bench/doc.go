// Package bench is the load generator behind `cairn bench`: it drives the
// etcd v2 API of Cairn or of etcd (over mutual TLS) and Cairn's DNS
// responder with one workload at a time, and reports throughput and
// latency percentiles.
//
// The workloads are put, get (linearizable with quorum=true, which Cairn
// takes as its default and etcd needs asked for; local with stale=true,
// which etcd ignores as its reads are local already), refresh (TTL
// heartbeats over keys created first), watch (the time from a write to its
// delivery at every watcher, one write at a time) and dns (A or SRV
// queries over UDP). Every request of one workload is the same bytes on
// either server, so two clusters are compared on equal terms (Compare).
//
// Requests go to the members in turn (round robin), each client keeping one
// HTTP/1.1 keep-alive connection per member: the client of the client
// commands (cluster/v2client) fails over, serialises its endpoint choice
// and keeps 4 idle connections per member, which under 64 clients turns
// into a TLS handshake per request. Latencies go into a log-bucketed
// histogram (Histogram) with a relative error under 1%.
package bench
