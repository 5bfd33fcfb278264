package store

import (
	"strings"
)

// eventHistory is a ring of the most recent events, one per store index:
// every index-consuming operation (writes, refreshes and each expiry) adds
// exactly one event, so the event for index i sits at offset i-start.
type eventHistory struct {
	events   []*Event
	capacity int
	front    int // position of the oldest event
	size     int
	start    uint64 // index of the oldest event (0 while empty)
	last     uint64 // index of the newest event
}

func newEventHistory(capacity int) *eventHistory {
	if capacity < 1 {
		capacity = 1
	}
	return &eventHistory{capacity: capacity}
}

func (h *eventHistory) add(e *Event) {
	if h.events == nil {
		// Grow lazily: a large configured window costs nothing until used.
		h.events = make([]*Event, 0, min(h.capacity, 1024))
	}
	if h.size < h.capacity {
		pos := (h.front + h.size) % h.capacity
		if pos == len(h.events) {
			h.events = append(h.events, e)
		} else {
			h.events[pos] = e
		}
		h.size++
	} else {
		h.events[h.front] = e
		h.front = (h.front + 1) % h.capacity
	}
	h.last = e.Index()
	h.start = h.at(0).Index()
}

func (h *eventHistory) at(i int) *Event { return h.events[(h.front+i)%h.capacity] }

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
