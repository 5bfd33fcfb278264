package peer

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its networks; a goroutine left behind is a connection
// that Close did not reach.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
