package bench_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a client connection, watcher or member
// outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
