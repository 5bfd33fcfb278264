package servertest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a member outlives its test. cluster's read
// verifier is ignored: see cmd/cairn/server's TestMain.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/cairnkv/cairn/cluster.(*verifier).loop"))
}
