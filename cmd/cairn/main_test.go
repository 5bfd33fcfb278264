package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine started by the tests (a member,
// a fake server, a watch, a client's connection) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
