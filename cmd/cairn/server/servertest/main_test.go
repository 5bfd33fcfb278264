package servertest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a member outlives its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
