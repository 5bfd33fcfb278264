package server_test

import (
	"os"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/hang"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine started by the tests outlives
// them. Ignored: two goroutines of the ACME test's libraries that have no
// way to be stopped (pebble's validation authority; the rate limiter
// certmagic's ACME issuer makes for itself).
// A hung test is named at the end of the output (CI keeps the tail).
func TestMain(m *testing.M) {
	hang.Watch(os.Stderr, func() { os.Exit(2) })
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"),
		goleak.IgnoreTopFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).permit"),
	)
}
