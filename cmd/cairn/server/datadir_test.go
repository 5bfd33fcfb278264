package server_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
)

// A second member on a data dir in use fails at once, naming the PID, and
// touches nothing in it (the development PKI included); once the first
// closes, the dir is free.
func TestDataDirInUse(t *testing.T) {
	cfg := servertest.Config(t)
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nodeCert := filepath.Join(cfg.DataDir, "pki", "node.crt")
	before, err := os.ReadFile(nodeCert)
	if err != nil {
		t.Fatal(err)
	}

	second := servertest.Config(t)
	second.DataDir = cfg.DataDir
	second.Addr, second.PeerAddr = "127.0.0.2:0", "127.0.0.2:0" // other hosts: a new node certificate if it got that far
	_, err = server.New(second)
	want := "data dir " + cfg.DataDir + " in use by PID " + strconv.Itoa(os.Getpid())
	if !errors.Is(err, disk.ErrInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second member: got %v, want %q", err, want)
	}
	if after, _ := os.ReadFile(nodeCert); !bytes.Equal(before, after) {
		t.Fatal("the second member rewrote the first's node certificate")
	}

	s.Close()
	s2, err := server.New(cfg)
	if err != nil {
		t.Fatalf("data dir still locked after Close: %v", err)
	}
	s2.Close()
}
