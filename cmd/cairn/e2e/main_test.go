package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/hang"
)

var (
	// testPKI is shared by every server and client of the run.
	testPKI *PKI
	// cairnBin is the binary built once by TestMain; cairnBuildErr says why
	// there is none.
	cairnBin      string
	cairnBuildErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cairn-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	testPKI, err = NewPKI(filepath.Join(dir, "pki"), TrustDomain)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: test PKI:", err)
		return 1
	}
	cairnBin, cairnBuildErr = BuildCairn(filepath.Join(dir, "bin"))
	// A hung test is named at the end of the output (CI keeps the tail).
	defer hang.Watch(os.Stderr, func() { os.Exit(2) })()
	return m.Run()
}

// needCairn returns the cairn binary or fails the test with the build error.
func needCairn(t testing.TB) string {
	t.Helper()
	if cairnBuildErr != nil {
		t.Fatalf("cairn binary unavailable: %v", cairnBuildErr)
	}
	return cairnBin
}

// startCairn starts a one-node cairn with the shared test PKI.
func startCairn(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartCairn(t, &CairnConfig{Bin: needCairn(t), PKI: testPKI, Args: extra})
}
