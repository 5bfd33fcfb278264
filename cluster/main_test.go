package cluster

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine started by the tests outlives
// them: every goroutine has an owner that stops it.
//
// CAIRN_TEST_LOG_STORE=boltdb runs every test on the boltdb log store
// (the default is a new data dir's: wal), as CI does once.
func TestMain(m *testing.M) {
	if s := os.Getenv("CAIRN_TEST_LOG_STORE"); s != "" {
		defaultLogStore = s
	}
	goleak.VerifyTestMain(m)
}
