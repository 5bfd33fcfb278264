package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"time"
)

// Snapshot format (version 1), streamed with no whole-store buffer:
//
//	magic "CAIRNST1"
//	uvarint store index, 15 uvarint stats counters, uvarint history capacity
//	node records in depth-first pre-order (parents before children), each
//	  'N' string path, byte dir, uvarint created, uvarint modified,
//	    varint expireUnixNano, [string value for files]
//	event records in index order, each
//	  'E' byte refresh, string action, node extern, prevNode extern
//	'Z' uint32 CRC-32 (Castagnoli) of everything before it
//
// Strings are uvarint length + bytes. A node extern is a presence byte then
// key, value flag+value, dir, expiration, ttl, modified, created.
const snapshotMagic = "CAIRNST1"

// ErrBadSnapshot means a snapshot stream is truncated or corrupt.
var ErrBadSnapshot = errors.New("store: bad snapshot")

// Snapshot is a point-in-time copy of the store, cheap to take (values are
// shared, not copied) and written out later without holding any lock.
type Snapshot struct {
	index   uint64
	stats   StatsSnapshot
	histCap int
	nodes   []snapNode
	events  []*Event
}

type snapNode struct {
	path, value   string
	dir           bool
	created, mod  uint64
	expireUnixNsc int64
}

// Snapshot captures the store's state. Call WriteTo on the result from any
// goroutine; writes to the store may continue meanwhile.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &Snapshot{index: s.index, stats: s.Stats(), histCap: s.hub.history.capacity}
	// Counted first so the copy is one exact allocation, not a doubling
	// slice: with a million keys the difference is hundreds of megabytes.
	var count func(n *node) int
	count = func(n *node) int {
		c := len(n.children)
		for _, ch := range n.children {
			if ch.isDir() {
				c += count(ch)
			}
		}
		return c
	}
	snap.nodes = make([]snapNode, 0, count(s.root))
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.children {
			snap.nodes = append(snap.nodes, snapNode{path: c.path, value: c.value, dir: c.isDir(),
				created: c.createdIndex, mod: c.modifiedIndex, expireUnixNsc: c.expireTime})
			if c.isDir() {
				walk(c)
			}
		}
	}
	walk(s.root)
	s.hub.mu.Lock()
	h := s.hub.history
	snap.events = make([]*Event, h.size)
	for i := range h.size {
		snap.events[i] = h.at(i)
	}
	s.hub.mu.Unlock()
	return snap
}

// Index is the store index the snapshot was taken at.
func (sn *Snapshot) Index() uint64 { return sn.index }

// WriteTo streams the snapshot to w.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriterSize(io.MultiWriter(cw, crc), 64<<10)
	e := encoder{w: bw}
	e.raw([]byte(snapshotMagic))
	e.uvarint(sn.index)
	st := sn.stats
	for _, v := range []uint64{st.GetSuccess, st.GetFail, st.SetSuccess, st.SetFail, st.DeleteSuccess,
		st.DeleteFail, st.UpdateSuccess, st.UpdateFail, st.CreateSuccess, st.CreateFail,
		st.CompareAndSwapSuccess, st.CompareAndSwapFail, st.CompareAndDeleteSuccess,
		st.CompareAndDeleteFail, st.ExpireCount} {
		e.uvarint(v)
	}
	e.uvarint(uint64(sn.histCap))
	for i := range sn.nodes {
		n := &sn.nodes[i]
		e.byte('N')
		e.str(n.path)
		e.bool(n.dir)
		e.uvarint(n.created)
		e.uvarint(n.mod)
		e.varint(n.expireUnixNsc)
		if !n.dir {
			e.str(n.value)
		}
	}
	for _, ev := range sn.events {
		e.byte('E')
		e.bool(ev.Refresh)
		e.str(ev.Action)
		e.extern(ev.Node)
		e.extern(ev.PrevNode)
	}
	e.byte('Z')
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("store: write snapshot: %w", e.err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := cw.Write(sum[:]); err != nil {
		return cw.n, fmt.Errorf("store: write snapshot: %w", err)
	}
	return cw.n, nil
}

// Restore replaces the whole store with a snapshot read from r. On error the
// store is unchanged. Open watchers are closed with ErrWatcherRestored so
// their consumers resume from history.
func (s *Store) Restore(r io.Reader) error {
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	br := bufio.NewReaderSize(r, 64<<10)
	d := decoder{r: br, crc: crc}
	if string(d.raw(len(snapshotMagic))) != snapshotMagic {
		return fmt.Errorf("%w: not a cairn store snapshot (bad magic)", ErrBadSnapshot)
	}
	index := d.uvarint()
	var c [15]uint64
	for i := range c {
		c[i] = d.uvarint()
	}
	st := StatsSnapshot{GetSuccess: c[0], GetFail: c[1], SetSuccess: c[2], SetFail: c[3],
		DeleteSuccess: c[4], DeleteFail: c[5], UpdateSuccess: c[6], UpdateFail: c[7],
		CreateSuccess: c[8], CreateFail: c[9], CompareAndSwapSuccess: c[10], CompareAndSwapFail: c[11],
		CompareAndDeleteSuccess: c[12], CompareAndDeleteFail: c[13], ExpireCount: c[14]}
	// The writer's history capacity: the local bounds win. Events are
	// re-added in order, so a window within both bounds comes back whole
	// and a larger one loses its oldest events, as live adds would.
	_ = d.uvarint()

	root := newDir("/", 0, nil, time.Time{})
	var heap ttlHeap
	hist := newEventHistory(s.cfg.HistorySize, s.cfg.HistoryBytes)
	stack := []*node{root}
	for d.err == nil {
		tag := d.byte()
		if tag == 'Z' || d.err != nil {
			break
		}
		switch tag {
		case 'N':
			p := d.str()
			dir := d.bool()
			created, mod := d.uvarint(), d.uvarint()
			exp := d.varint()
			var n *node
			if dir {
				n = &node{path: p, children: make(map[string]*node), heapIndex: -1}
			} else {
				n = &node{path: p, value: d.str(), heapIndex: -1}
			}
			if d.err != nil {
				break
			}
			// What WriteTo writes, and all the store relies on: clean keys
			// below the root, each once, indexes in order.
			if p == "/" || p != cleanPath(p) {
				return fmt.Errorf("%w: node key %q is not a clean key below the root", ErrBadSnapshot, p)
			}
			if created > mod || mod > index {
				return fmt.Errorf("%w: node %q created at %d, modified at %d, store index %d", ErrBadSnapshot, p, created, mod, index)
			}
			n.createdIndex, n.modifiedIndex, n.expireTime = created, mod, exp
			// Pop to the parent: pre-order guarantees it is on the stack.
			parent := parentPath(p)
			for len(stack) > 0 && stack[len(stack)-1].path != parent {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				return fmt.Errorf("%w: node %q has no parent before it", ErrBadSnapshot, p)
			}
			par := stack[len(stack)-1]
			if _, dup := par.children[n.name()]; dup {
				return fmt.Errorf("%w: node %q appears twice", ErrBadSnapshot, p)
			}
			n.parent = par
			par.children[n.name()] = n
			if n.expireTime != 0 {
				heap.push(n)
			}
			if dir {
				stack = append(stack, n)
			}
		case 'E':
			ev := &Event{Refresh: d.bool(), Action: d.str()}
			ev.Node = d.extern()
			ev.PrevNode = d.extern()
			if ev.Node == nil && d.err == nil {
				return fmt.Errorf("%w: event without node", ErrBadSnapshot)
			}
			if d.err == nil {
				hist.add(ev)
			}
		default:
			return fmt.Errorf("%w: unknown record %q", ErrBadSnapshot, tag)
		}
	}
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return fmt.Errorf("%w: missing checksum: %v", ErrBadSnapshot, err)
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.hub.closeAll(ErrWatcherRestored)
	s.root, s.index, s.ttl = root, index, heap
	s.hub.mu.Lock()
	s.hub.history = hist
	s.hub.mu.Unlock()
	s.stats.restore(st)
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type encoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) byte(b byte) {
	if e.err == nil {
		e.err = e.w.WriteByte(b)
	}
}
func (e *encoder) bool(b bool) {
	if b {
		e.byte(1)
	} else {
		e.byte(0)
	}
}
func (e *encoder) uvarint(v uint64) { e.raw(e.buf[:binary.PutUvarint(e.buf[:], v)]) }
func (e *encoder) varint(v int64)   { e.raw(e.buf[:binary.PutVarint(e.buf[:], v)]) }
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}
func (e *encoder) extern(n *NodeExtern) {
	if n == nil {
		e.byte(0)
		return
	}
	e.byte(1)
	e.str(n.Key)
	e.bool(n.Value != nil)
	if n.Value != nil {
		e.str(*n.Value)
	}
	e.bool(n.Dir)
	var exp int64
	if n.Expiration != nil {
		exp = n.Expiration.UnixNano()
	}
	e.varint(exp)
	e.varint(n.TTL)
	e.uvarint(n.ModifiedIndex)
	e.uvarint(n.CreatedIndex)
}

// maxSnapshotString bounds one string in a snapshot, so a corrupt length
// cannot make Restore allocate without limit.
const maxSnapshotString = 64 << 20

type decoder struct {
	r   *bufio.Reader
	crc io.Writer
	err error
	one [1]byte
}

// rawChunk bounds what raw allocates ahead of the bytes it reads: a
// corrupt length costs what the stream holds, not what it claims.
const rawChunk = 64 << 10

func (d *decoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, 0, min(n, rawChunk))
	for len(b) < n {
		m := min(n-len(b), rawChunk)
		b = slices.Grow(b, m)
		k, err := io.ReadFull(d.r, b[len(b):len(b)+m])
		b = b[:len(b)+k]
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			d.err = err
			return nil
		}
	}
	d.crc.Write(b)
	return b
}
func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	b, err := d.r.ReadByte()
	if err != nil {
		d.err = err
		return 0
	}
	d.one[0] = b
	d.crc.Write(d.one[:])
	return b
}
func (d *decoder) bool() bool { return d.byte() != 0 }
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(byteReader{d})
	if err != nil {
		d.err = err
	}
	return v
}
func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(byteReader{d})
	if err != nil {
		d.err = err
	}
	return v
}
func (d *decoder) str() string {
	n := d.uvarint()
	if n > maxSnapshotString {
		if d.err == nil {
			d.err = fmt.Errorf("string of %d bytes exceeds the limit", n)
		}
		return ""
	}
	return string(d.raw(int(n)))
}
func (d *decoder) extern() *NodeExtern {
	if !d.bool() {
		return nil
	}
	n := &NodeExtern{Key: d.str()}
	if d.bool() {
		v := d.str()
		n.Value = &v
	}
	n.Dir = d.bool()
	if exp := d.varint(); exp != 0 {
		t := time.Unix(0, exp).UTC()
		n.Expiration = &t
	}
	n.TTL = d.varint()
	n.ModifiedIndex = d.uvarint()
	n.CreatedIndex = d.uvarint()
	return n
}

type byteReader struct{ d *decoder }

func (b byteReader) ReadByte() (byte, error) {
	c := b.d.byte()
	return c, b.d.err
}
