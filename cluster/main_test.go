package cluster

import (
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/hang"
)

// TestMain names, at the end of the output, the tests still running when
// the binary nears its -timeout (CI logs keep the tail).
func TestMain(m *testing.M) { hang.Main(m) }
