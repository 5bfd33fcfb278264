package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/hashicorp/raft"
)

// A raft log command is framed: the byte FrameByte, a CRC-32C (Castagnoli,
// big-endian) over everything after it, then the command. Commands written
// before the frame existed start with their type byte (1 to 4, never
// FrameByte) and carry no checksum: they still pass, and leave the log at
// the next snapshot and compaction.
const (
	FrameByte   byte = 0xCA
	FrameHeader      = 1 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrChecksum is wrapped by Unframe's error for a framed entry whose bytes
// do not match their checksum.
var ErrChecksum = errors.New("checksum mismatch")

// errUnframedAfterFramed: no binary that writes framed entries writes
// unframed ones, so an unframed entry after a framed one in the same log
// had its frame byte damaged.
var errUnframedAfterFramed = errors.New("unframed entry after a framed one: its frame byte is damaged")

// Frame returns b, which must start with FrameHeader bytes of room
// followed by the command, with the frame filled in.
func Frame(b []byte) []byte {
	b[0] = FrameByte
	binary.BigEndian.PutUint32(b[1:FrameHeader], crc32.Checksum(b[FrameHeader:], castagnoli))
	return b
}

// Unframe checks the frame of an entry and returns the command inside it,
// with framed reporting whether it had one. An unframed (older) entry is
// returned whole.
func Unframe(data []byte) (body []byte, framed bool, err error) {
	if len(data) == 0 || data[0] != FrameByte {
		// A framed entry whose frame byte alone is damaged (to a command
		// type, it would pass as an older entry) still carries the CRC
		// of its command: an older entry matches it by chance 1 in 2^32.
		if len(data) >= FrameHeader && binary.BigEndian.Uint32(data[1:FrameHeader]) == crc32.Checksum(data[FrameHeader:], castagnoli) {
			return nil, true, fmt.Errorf("%w: frame byte %#02x, want %#02x", ErrChecksum, data[0], FrameByte)
		}
		return data, false, nil
	}
	if len(data) < FrameHeader {
		return nil, true, fmt.Errorf("%w: entry of %d bytes is shorter than its frame", ErrChecksum, len(data))
	}
	body = data[FrameHeader:]
	want := binary.BigEndian.Uint32(data[1:FrameHeader])
	if got := crc32.Checksum(body, castagnoli); got != want {
		return nil, true, fmt.Errorf("%w: stored CRC-32C %08x, computed %08x over %d bytes", ErrChecksum, want, got, len(body))
	}
	return body, true, nil
}

// ErrLogCorrupt is matched (errors.Is) by every error about a raft log
// entry whose bytes do not match their checksum.
var ErrLogCorrupt = errors.New("disk: corrupt raft log entry")

// CorruptEntryError is a raft log entry that failed its checksum: where it
// is, what is wrong, and (in its text) what the operator does about it.
type CorruptEntryError struct {
	Index uint64 // the entry's raft index
	Path  string // the log file (raft.db), when known
	Err   error  // what the check found
}

func (e *CorruptEntryError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	return fmt.Sprintf("disk: raft log entry %d%s is corrupt (%v); this member applies neither it nor anything after it. "+
		"Stop its process, then either empty its data dir and add it to the cluster again as a new member "+
		"(cairn member remove ID, then start with --peers), or, when it is the only member, restore the last "+
		"backup into a new data dir (cairn snapshot restore); see docs/reliability.md", e.Index, where, e.Err)
}

func (e *CorruptEntryError) Is(target error) bool { return target == ErrLogCorrupt }
func (e *CorruptEntryError) Unwrap() error        { return e.Err }

// CheckEntry verifies one log entry: a command's frame and checksum, and
// that an unframed command does not follow a framed one (sawFramed: the
// log had one before; the result says whether it has now). Entries raft
// writes itself (configuration, barriers) carry no frame.
func CheckEntry(l *raft.Log, sawFramed bool) (body []byte, framed bool, err error) {
	if l.Type != raft.LogCommand {
		return l.Data, sawFramed, nil
	}
	body, framed, err = Unframe(l.Data)
	if err == nil && !framed && sawFramed {
		err = errUnframedAfterFramed
	}
	if err != nil {
		return nil, framed, &CorruptEntryError{Index: l.Index, Err: err}
	}
	return body, framed || sawFramed, nil
}
