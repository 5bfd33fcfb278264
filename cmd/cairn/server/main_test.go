package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine started by the tests outlives
// them. Ignored: two goroutines of the ACME test's libraries that have no
// way to be stopped (pebble's validation authority; the rate limiter
// certmagic's ACME issuer makes for itself).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"),
		goleak.IgnoreTopFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).permit"),
	)
}
