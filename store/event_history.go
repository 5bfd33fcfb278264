package store

import (
	"strings"
)

// eventHistory is a ring of the most recent events, one per store index:
// every index-consuming operation (writes, refreshes and each expiry) adds
// exactly one event, so the event for index i sits at offset i-start.
//
// It is bounded twice: at most capacity events and at most maxBytes bytes
// (eventSize). Adding an event drops the oldest ones until both bounds hold
// again, but never the newest. What it keeps is therefore the longest run
// of latest events that fits both bounds, a function of the events alone:
// replicas that apply the same events with the same bounds keep the same
// window, and so does a store restored from a snapshot of it.
type eventHistory struct {
	events   []histSlot
	capacity int
	maxBytes int64
	bytes    int64 // sum of eventSize over the kept events
	front    int   // position of the oldest event
	size     int
	start    uint64 // index of the oldest event (0 while empty)
	last     uint64 // index of the newest event
}

// histSlot is an event and its eventSize, computed once when it is added:
// dropping an old event then reads no cold memory.
type histSlot struct {
	e    *Event
	size int64
}

func newEventHistory(capacity int, maxBytes int64) *eventHistory {
	return &eventHistory{capacity: max(capacity, 1), maxBytes: max(maxBytes, 1)}
}

// eventOverhead is what an event costs beyond its strings: the Event (48
// bytes), its Node and PrevNode (88 each, 96 allocated), their two value
// string headers (16 each) and expiration times (24, 32 allocated) and its
// slot in the ring (16); TestEventOverhead keeps it honest.
const eventOverhead = 48 + 2*96 + 2*16 + 2*32 + 16

// eventSize is the bytes an event holds for the byte bound: its key, its
// value, the previous value and eventOverhead. The key is counted once
// (PrevNode is always the node at the same key) and so is the value of a
// refresh (it keeps the previous one). It reads only the event's content,
// so it is the same on every replica and after a snapshot restore, and
// costs a few loads.
func eventSize(e *Event) int64 {
	n := int64(eventOverhead)
	if e.Node != nil {
		n += int64(len(e.Node.Key))
		if e.Node.Value != nil {
			n += int64(len(*e.Node.Value))
		}
	}
	if p := e.PrevNode; p != nil && p.Value != nil && !e.Refresh {
		n += int64(len(*p.Value))
	}
	return n
}

func (h *eventHistory) add(e *Event) {
	if h.events == nil {
		// Grow lazily: a large configured window costs nothing until used.
		h.events = make([]histSlot, 0, min(h.capacity, 1024))
	}
	if h.size == h.capacity {
		h.dropOldest()
	}
	slot := histSlot{e: e, size: eventSize(e)}
	pos := (h.front + h.size) % h.capacity
	if pos == len(h.events) {
		h.events = append(h.events, slot)
	} else {
		h.events[pos] = slot
	}
	h.size++
	h.bytes += slot.size
	for h.bytes > h.maxBytes && h.size > 1 {
		h.dropOldest()
	}
	h.last = e.Index()
	h.start = h.last - uint64(h.size) + 1 // indexes are consecutive
}

// dropOldest forgets the oldest event, releasing it to the collector.
func (h *eventHistory) dropOldest() {
	h.bytes -= h.events[h.front].size
	h.events[h.front] = histSlot{}
	h.front = (h.front + 1) % h.capacity
	h.size--
}

func (h *eventHistory) at(i int) *Event { return h.events[(h.front+i)%h.capacity].e }

// errCleared is the 401 for a waitIndex that left the window.
func (h *eventHistory) errCleared(index, storeIndex uint64) *Error {
	return NewError(EcodeEventIndexCleared,
		"the requested history has been cleared ["+utoa(h.start)+"/"+utoa(index)+"]", storeIndex)
}

// scan returns up to max events with index >= index that match, in index
// order, and the index to continue from. A waitIndex older than the window
// is a 401.
func (h *eventHistory) scan(match func(*Event) bool, index uint64, max int, storeIndex uint64) ([]*Event, uint64, *Error) {
	if h.size == 0 || index > h.last {
		return nil, index, nil
	}
	if index < h.start {
		return nil, index, h.errCleared(index, storeIndex)
	}
	var out []*Event
	for i := int(index - h.start); i < h.size; i++ {
		e := h.at(i)
		if match(e) {
			out = append(out, e)
			if len(out) == max {
				return out, e.Index() + 1, nil
			}
		}
	}
	return out, h.last + 1, nil
}

// matches reports whether a watch on key (recursive or not) receives e. The
// same rule serves history scans and live notification: the event's own key,
// a visible descendant for recursive watches, or the delete or expire of an
// ancestor directory. Refreshes never match.
func matches(e *Event, key string, recursive bool) bool {
	if e.Refresh || e.Node == nil {
		return false
	}
	k := e.Node.Key
	if k == key {
		return true
	}
	if recursive && isDescendant(k, key) && !hiddenBelow(key, k) {
		return true
	}
	if (e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode != nil && e.PrevNode.Dir {
		return isDescendant(key, k)
	}
	return false
}

// matchesAll is matches for WatchAll: every event at or below key, hidden
// keys and refreshes included, and the delete or expire of an ancestor
// directory.
func matchesAll(e *Event, key string) bool {
	if e.Node == nil {
		return false
	}
	k := e.Node.Key
	if k == key || isDescendant(k, key) {
		return true
	}
	if (e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode != nil && e.PrevNode.Dir {
		return isDescendant(key, k)
	}
	return false
}

// isDescendant reports whether p lies strictly below dir.
func isDescendant(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// hiddenBelow reports whether some path segment of p below dir starts with '_'.
func hiddenBelow(dir, p string) bool {
	rest := p[len(dir):]
	if dir == "/" {
		rest = p
	}
	return strings.Contains(rest, "/_")
}
