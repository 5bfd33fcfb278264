package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/cairnkv/cairn/store"
)

// An entry's data is framed: the byte cmdFramed, a CRC-32C (Castagnoli,
// big-endian) over everything after it, then the command: its type byte and
// its fields. Entries written before the frame existed start with the type
// byte itself (1 to 4) and carry no checksum; they still decode, and leave
// the log at the next snapshot and compaction. A framed entry whose checksum
// does not match is corrupt (errChecksum), which is a different thing from
// a command this binary does not understand (an unknown type).
const (
	cmdFramed      byte = 0xCA
	cmdFrameHeader      = 1 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Command types carried in raft log entries. The first byte of a command
// is its type; new types may be added, existing encodings never change.
const (
	cmdRequest byte = 1 // a store.Request stamped with the proposer's time
	cmdExpire  byte = 2 // delete everything expired at the carried time
	cmdMember  byte = 3 // set or remove a member's metadata (memberCmd as JSON)
	cmdNoop    byte = 4 // a new leader's first entry: applying it makes the leader ready
)

// command is one replicated operation.
type command struct {
	typ    byte
	now    time.Time
	req    *store.Request
	member *memberCmd
}

var errShortCommand = errors.New("cluster: truncated command")

const (
	flagDir = 1 << iota
	flagHasTTL
	flagRefresh
	flagRecursive
)

// encode renders c, framed with its checksum.
func (c *command) encode() []byte {
	b := c.encodeBody(make([]byte, cmdFrameHeader, c.sizeHint()))
	b[0] = cmdFramed
	binary.BigEndian.PutUint32(b[1:cmdFrameHeader], crc32.Checksum(b[cmdFrameHeader:], castagnoli))
	return b
}

func (c *command) sizeHint() int {
	size := cmdFrameHeader + 1 + binary.MaxVarintLen64
	if r := c.req; r != nil {
		size += len(r.Method) + len(r.Path) + len(r.Value) + len(r.PrevValue) + 6*binary.MaxVarintLen64 + 2
	}
	return size
}

// encodeBody appends the unframed command to b, compactly and without
// reflection: this is the write hot path.
func (c *command) encodeBody(b []byte) []byte {
	b = append(b, c.typ)
	b = binary.AppendVarint(b, c.now.UnixNano())
	if c.typ == cmdMember {
		j, err := json.Marshal(c.member)
		if err != nil { // cannot happen: plain fields
			panic(fmt.Sprintf("cluster: encode member command: %v", err))
		}
		return append(b, j...)
	}
	if c.typ != cmdRequest {
		return b
	}
	r := c.req
	var flags byte
	if r.Dir {
		flags |= flagDir
	}
	if r.HasTTL {
		flags |= flagHasTTL
	}
	if r.Refresh {
		flags |= flagRefresh
	}
	if r.Recursive {
		flags |= flagRecursive
	}
	b = append(b, flags, byte(r.PrevExist))
	b = appendString(b, r.Method)
	b = appendString(b, r.Path)
	b = appendString(b, r.Value)
	b = appendString(b, r.PrevValue)
	b = binary.AppendUvarint(b, r.PrevIndex)
	b = binary.AppendUvarint(b, r.TTL)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errChecksum is the error of decodeCommand for a framed entry whose bytes
// do not match their checksum: the entry is corrupt and must not be used.
var errChecksum = errors.New("checksum mismatch")

// errLegacyAfterFramed is checkEntry's error for an entry in the old,
// unframed encoding found after a framed one in the same log: no binary
// that writes framed entries writes unframed ones, so its first byte (the
// frame marker) was damaged.
var errLegacyAfterFramed = errors.New("unframed entry after a framed one: its frame byte is damaged")

// verifyFrame checks the frame of an entry and returns the command inside
// it, with framed reporting whether it had one. An unframed (older) entry is
// returned whole.
func verifyFrame(data []byte) (body []byte, framed bool, err error) {
	if len(data) == 0 || data[0] != cmdFramed {
		return data, false, nil
	}
	if len(data) < cmdFrameHeader {
		return nil, true, fmt.Errorf("%w: entry of %d bytes is shorter than its frame", errChecksum, len(data))
	}
	body = data[cmdFrameHeader:]
	want := binary.BigEndian.Uint32(data[1:cmdFrameHeader])
	if got := crc32.Checksum(body, castagnoli); got != want {
		return nil, true, fmt.Errorf("%w: stored CRC-32C %08x, computed %08x over %d bytes", errChecksum, want, got, len(body))
	}
	return body, true, nil
}

// decodeCommand parses an entry written by encode (or by an older binary,
// unframed). A framed entry whose checksum fails gives an error that wraps
// errChecksum.
func decodeCommand(data []byte) (*command, error) {
	data, _, err := verifyFrame(data)
	if err != nil {
		return nil, err
	}
	return decodeBody(data)
}

// decodeBody parses a command without its frame.
func decodeBody(data []byte) (*command, error) {
	if len(data) < 2 {
		return nil, errShortCommand
	}
	c := &command{typ: data[0]}
	ns, n := binary.Varint(data[1:])
	if n <= 0 {
		return nil, errShortCommand
	}
	c.now = time.Unix(0, ns)
	rest := data[1+n:]
	switch c.typ {
	case cmdExpire, cmdNoop:
		return c, nil
	case cmdMember:
		c.member = new(memberCmd)
		if err := json.Unmarshal(rest, c.member); err != nil {
			return nil, fmt.Errorf("cluster: bad member command: %w", err)
		}
		return c, nil
	case cmdRequest:
	default:
		return nil, fmt.Errorf("cluster: unknown command type %d", c.typ)
	}
	if len(rest) < 2 {
		return nil, errShortCommand
	}
	flags, prevExist := rest[0], rest[1]
	rest = rest[2:]
	r := &store.Request{
		Dir: flags&flagDir != 0, HasTTL: flags&flagHasTTL != 0,
		Refresh: flags&flagRefresh != 0, Recursive: flags&flagRecursive != 0,
		PrevExist: store.PrevExist(prevExist),
	}
	var ok bool
	if r.Method, rest, ok = readString(rest); !ok {
		return nil, errShortCommand
	}
	if r.Path, rest, ok = readString(rest); !ok {
		return nil, errShortCommand
	}
	if r.Value, rest, ok = readString(rest); !ok {
		return nil, errShortCommand
	}
	if r.PrevValue, rest, ok = readString(rest); !ok {
		return nil, errShortCommand
	}
	if r.PrevIndex, n = binary.Uvarint(rest); n <= 0 {
		return nil, errShortCommand
	}
	rest = rest[n:]
	if r.TTL, n = binary.Uvarint(rest); n <= 0 {
		return nil, errShortCommand
	}
	c.req = r
	return c, nil
}

func readString(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}
