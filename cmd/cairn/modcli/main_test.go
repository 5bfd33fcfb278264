package modcli

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a renewal loop, a command's waiter or a
// connection outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
