package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err    error
		reason string
		full   bool
	}{
		{&os.PathError{Op: "write", Path: "raft.db", Err: syscall.ENOSPC}, ReasonNoSpace, true},
		{fmt.Errorf("commit: %w", syscall.EDQUOT), ReasonQuota, true},
		{syscall.EFBIG, ReasonFileTooLarge, true},
		{syscall.EIO, ReasonOther, false},
		{io.ErrUnexpectedEOF, ReasonOther, false},
	} {
		if r, f := Classify(c.err); r != c.reason || f != c.full {
			t.Errorf("Classify(%v) = %s %v, want %s %v", c.err, r, f, c.reason, c.full)
		}
	}
}

// The first write that fails for want of room starts an episode; others
// are counted; only Clear ends it.
func TestSpace(t *testing.T) {
	s := NewSpace("/data")
	if s.Failed(nil) != nil || s.Full() || s.Refuse() != nil {
		t.Fatal("a new Space is full")
	}
	if err := s.Failed(syscall.EIO); err != syscall.EIO || s.Full() {
		t.Fatalf("an I/O error: %v, full %v", err, s.Full())
	}
	err := s.Failed(&os.PathError{Op: "write", Path: "/data/raft.db", Err: syscall.ENOSPC})
	if !errors.Is(err, ErrFull) || !errors.Is(err, syscall.ENOSPC) || !s.Full() {
		t.Fatalf("ENOSPC: %v, full %v", err, s.Full())
	}
	if want := "disk full: free space in /data (write /data/raft.db: no space left on device)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	<-s.Changed()
	s.Failed(syscall.EDQUOT)
	if _, first := s.Episode(); first.Error() != err.Error() {
		t.Errorf("episode error %v, want the first one", first)
	}
	if r := s.Refuse(); !errors.Is(r, ErrFull) || s.Failed(r) != r {
		t.Errorf("refusal %v", r)
	}
	if s.Failures(ReasonNoSpace) != 1 || s.Failures(ReasonQuota) != 1 || s.Failures(ReasonOther) != 1 {
		t.Errorf("failures %d %d %d, want 1 each", s.Failures(ReasonNoSpace), s.Failures(ReasonQuota), s.Failures(ReasonOther))
	}
	s.Clear()
	<-s.Changed()
	if s.Full() || s.Refuse() != nil {
		t.Error("still full after Clear")
	}
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	free, known, err := freeBytes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if known && free < MinFree {
		t.Skipf("%d bytes free in %s: too little to probe", free, dir)
	}
	if err := Probe(dir, MinFree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/" + probeName); !os.IsNotExist(err) {
		t.Errorf("the probe file was left behind: %v", err)
	}
}
