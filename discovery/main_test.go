package discovery_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine (a registrar's, an
// index's) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
