// Package e2e is Cairn's black-box end-to-end suite: it builds the real
// cairn binary, runs it on loopback with real mTLS, and checks it against
// the reference etcd 3.4 (/usr/bin/etcd with --enable-v2), etcdctl in v2
// mode and the Go v2 client.
//
// The cluster tests (cluster_test.go, cluster_timing_test.go; Linux only)
// run 3- and 5-node clusters of real processes through
// cluster/clustertest.Procs, which gives every node its own loopback IP and
// a fault-injecting proxy in front of its peer port. TestLeaderKillTimes
// runs alone and takes its number of rounds from CAIRN_KILL_ROUNDS.
// TestFaults (faults_test.go) runs cluster/clustertest/faults: a
// porcupine-checked history of reads, writes and compare-and-swaps under
// SIGKILL, SIGSTOP and partitions, 50 s by default, longer with
// CAIRN_FAULTS_DURATION (docs/reliability.md, "Fault-injection suite");
// TestWriteBench (writebench_test.go) measures writes through the leader
// and a follower when CAIRN_WRITE_BENCH=1.
//
// The non-test files hold reusable helpers (child processes, free ports, a
// poll helper, a test PKI, cairn and etcd servers) so that other black-box
// tests can drive real processes too.
//
// Tests speak the v2 API through cluster/v2client (Server.Client,
// clustertest.Procs.Client), in the store's types. Raw HTTP (Server.Do,
// Procs.Do) is kept for tests of the wire itself: the differential suite,
// which compares bytes, statuses and headers with etcd; headers such as
// X-Raft-Term and X-Etcd-Cluster-Id; TLS versions and slow clients.
//
// Invariants:
//
//   - Every process a test starts is killed and reaped by t.Cleanup, and its
//     combined output is shown when the test fails.
//   - Nothing waits with time.Sleep: readiness and eventual conditions are
//     polled with a short ticker and a deadline (Poll).
//   - A test that needs an external binary (etcd, etcdctl) skips with a
//     message naming it when it is missing, and fails instead when the
//     environment sets CAIRN_REQUIRE_EXTERNAL=1 (as CI does).
//   - -short skips the whole package.
package e2e
