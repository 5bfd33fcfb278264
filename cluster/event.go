package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/cairnkv/cairn/store"
)

// The binary encoding of a store.Event in a leader's answer to a forwarded
// proposal: what JSON took 20-odd allocations to decode. Every field of
// Event and NodeExtern is carried (TestEventEncodingCoversFields fails when
// one is added); an event whose node lists children falls back to JSON.
//
//	event: [version 1][action][uvarint EtcdIndex][flags: 1 refresh, 2 node, 4 prevNode][node][prevNode]
//	node:  [flags: 1 value, 2 dir, 4 expiration][key][value][expiration][varint TTL][uvarint modified][uvarint created]
//
// Strings are a uvarint length and the bytes; an expiration is a uvarint
// length and time.MarshalBinary (which keeps the zone offset, as JSON does).
const eventVersion byte = 1

var errBadEvent = errors.New("cluster: truncated or malformed event")

// eventSizeHint is about the size of ev's binary encoding.
func eventSizeHint(ev *store.Event) int {
	size := 32 + len(ev.Action)
	for _, nd := range []*store.NodeExtern{ev.Node, ev.PrevNode} {
		if nd != nil {
			size += 48 + len(nd.Key)
			if nd.Value != nil {
				size += len(*nd.Value)
			}
		}
	}
	return size
}

// appendEvent appends ev's binary encoding to b; ok is false (and b
// unchanged) for an event it cannot carry.
func appendEvent(b []byte, ev *store.Event) ([]byte, bool) {
	if (ev.Node != nil && ev.Node.Nodes != nil) || (ev.PrevNode != nil && ev.PrevNode.Nodes != nil) {
		return b, false
	}
	start := len(b)
	b = append(b, eventVersion)
	b = appendString(b, ev.Action)
	b = binary.AppendUvarint(b, ev.EtcdIndex)
	var flags byte
	if ev.Refresh {
		flags |= 1
	}
	if ev.Node != nil {
		flags |= 2
	}
	if ev.PrevNode != nil {
		flags |= 4
	}
	b = append(b, flags)
	for _, nd := range []*store.NodeExtern{ev.Node, ev.PrevNode} {
		if nd == nil {
			continue
		}
		var ok bool
		if b, ok = appendNode(b, nd); !ok {
			return b[:start], false
		}
	}
	return b, true
}

func appendNode(b []byte, nd *store.NodeExtern) ([]byte, bool) {
	var flags byte
	if nd.Value != nil {
		flags |= 1
	}
	if nd.Dir {
		flags |= 2
	}
	if nd.Expiration != nil {
		flags |= 4
	}
	b = append(b, flags)
	b = appendString(b, nd.Key)
	if nd.Value != nil {
		b = appendString(b, *nd.Value)
	}
	if nd.Expiration != nil {
		t, err := nd.Expiration.MarshalBinary()
		if err != nil {
			return b, false
		}
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	}
	b = binary.AppendVarint(b, nd.TTL)
	b = binary.AppendUvarint(b, nd.ModifiedIndex)
	b = binary.AppendUvarint(b, nd.CreatedIndex)
	return b, true
}

// decodeEvent parses appendEvent's encoding.
func decodeEvent(b []byte) (*store.Event, error) {
	if len(b) < 1 || b[0] != eventVersion {
		return nil, errBadEvent
	}
	b = b[1:]
	ev := new(store.Event)
	var ok bool
	if ev.Action, b, ok = readString(b); !ok {
		return nil, errBadEvent
	}
	var k int
	if ev.EtcdIndex, k = binary.Uvarint(b); k <= 0 || k >= len(b) {
		return nil, errBadEvent
	}
	flags := b[k]
	b = b[k+1:]
	ev.Refresh = flags&1 != 0
	var err error
	if flags&2 != 0 {
		if ev.Node, b, err = decodeNode(b); err != nil {
			return nil, err
		}
	}
	if flags&4 != 0 {
		if ev.PrevNode, b, err = decodeNode(b); err != nil {
			return nil, err
		}
	}
	if len(b) != 0 {
		return nil, errBadEvent
	}
	return ev, nil
}

func decodeNode(b []byte) (*store.NodeExtern, []byte, error) {
	if len(b) < 1 {
		return nil, nil, errBadEvent
	}
	flags := b[0]
	b = b[1:]
	nd := &store.NodeExtern{Dir: flags&2 != 0}
	var ok bool
	if nd.Key, b, ok = readString(b); !ok {
		return nil, nil, errBadEvent
	}
	if flags&1 != 0 {
		var v string
		if v, b, ok = readString(b); !ok {
			return nil, nil, errBadEvent
		}
		nd.Value = &v
	}
	if flags&4 != 0 {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, nil, errBadEvent
		}
		t := new(time.Time)
		if err := t.UnmarshalBinary(b[k : k+int(l)]); err != nil {
			return nil, nil, errBadEvent
		}
		nd.Expiration = t
		b = b[k+int(l):]
	}
	var k int
	if nd.TTL, k = binary.Varint(b); k <= 0 {
		return nil, nil, errBadEvent
	}
	b = b[k:]
	if nd.ModifiedIndex, k = binary.Uvarint(b); k <= 0 {
		return nil, nil, errBadEvent
	}
	b = b[k:]
	if nd.CreatedIndex, k = binary.Uvarint(b); k <= 0 {
		return nil, nil, errBadEvent
	}
	return nd, b[k:], nil
}
