package clustertest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine started by the tests outlives
// them: every goroutine has an owner that stops it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
