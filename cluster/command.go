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
	// cmdBatch carries many store.Requests (coalesced refreshes, see
	// refresh.go) applied in order at one time, each with its own result.
	// A binary that predates it cannot apply it: the leader writes one
	// only when every member has announced featureBatch (members.go).
	cmdBatch byte = 5
)

// maxBatchCount bounds the requests in a decoded cmdBatch (an encoded one
// holds at most maxRefreshBatch): a corrupt count must not allocate.
const maxBatchCount = 1 << 20

// command is one replicated operation.
type command struct {
	typ    byte
	now    time.Time
	req    *store.Request
	member *memberCmd
	reqs   []*store.Request // cmdBatch
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
		size += requestSize(r)
	}
	if len(c.reqs) > 0 {
		size += binary.MaxVarintLen64
		for _, r := range c.reqs {
			size += requestSize(r)
		}
	}
	return size
}

func requestSize(r *store.Request) int {
	return len(r.Method) + len(r.Path) + len(r.Value) + len(r.PrevValue) + 6*binary.MaxVarintLen64 + 2
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
	switch c.typ {
	case cmdRequest:
		return appendRequest(b, c.req)
	case cmdBatch:
		// [uvarint count] then the requests, each self-delimiting.
		b = binary.AppendUvarint(b, uint64(len(c.reqs)))
		for _, r := range c.reqs {
			b = appendRequest(b, r)
		}
	}
	return b
}

// appendRequest appends r's encoding: flags, prevExist, then its fields.
func appendRequest(b []byte, r *store.Request) []byte {
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
		r, _, err := readRequest(rest)
		if err != nil {
			return nil, err
		}
		c.req = r
		return c, nil
	case cmdBatch:
		count, k := binary.Uvarint(rest)
		if k <= 0 {
			return nil, errShortCommand
		}
		if count > maxBatchCount || count > uint64(len(rest)) {
			return nil, fmt.Errorf("cluster: batch of %d requests in %d bytes", count, len(rest))
		}
		rest = rest[k:]
		c.reqs = make([]*store.Request, count)
		for i := range c.reqs {
			var err error
			if c.reqs[i], rest, err = readRequest(rest); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	return nil, fmt.Errorf("cluster: unknown command type %d", c.typ)
}

// readRequest parses one request written by appendRequest and returns
// the bytes after it.
func readRequest(rest []byte) (*store.Request, []byte, error) {
	if len(rest) < 2 {
		return nil, nil, errShortCommand
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
		return nil, nil, errShortCommand
	}
	if r.Path, rest, ok = readString(rest); !ok {
		return nil, nil, errShortCommand
	}
	if r.Value, rest, ok = readString(rest); !ok {
		return nil, nil, errShortCommand
	}
	if r.PrevValue, rest, ok = readString(rest); !ok {
		return nil, nil, errShortCommand
	}
	var n int
	if r.PrevIndex, n = binary.Uvarint(rest); n <= 0 {
		return nil, nil, errShortCommand
	}
	rest = rest[n:]
	if r.TTL, n = binary.Uvarint(rest); n <= 0 {
		return nil, nil, errShortCommand
	}
	return r, rest[n:], nil
}

func readString(b []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}
