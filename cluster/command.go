package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/store"
)

// An entry's data is framed with a checksum (disk.Frame, disk.Unframe);
// entries written before the frame existed still decode.

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
	return disk.Frame(c.encodeBody(make([]byte, disk.FrameHeader, c.sizeHint())))
}

func (c *command) sizeHint() int {
	size := disk.FrameHeader + 1 + binary.MaxVarintLen64
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

// decodeCommand parses an entry written by encode (or by an older binary,
// unframed). A framed entry whose checksum fails gives an error that wraps
// disk.ErrChecksum.
func decodeCommand(data []byte) (*command, error) {
	data, _, err := disk.Unframe(data)
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
