package store

import (
	"strings"
	"sync"
	"sync/atomic"
)

// watcherHub registers watchers by watched path and dispatches events to
// them. Dispatch never blocks: a watcher whose buffer is full is closed with
// ErrWatcherOverflow and resumes from history.
type watcherHub struct {
	mu       sync.Mutex
	watchers map[string]map[*Watcher]struct{}
	count    atomic.Int64
	history  *eventHistory
	buffer   int
}

func newWatcherHub(history *eventHistory, buffer int) *watcherHub {
	return &watcherHub{
		watchers: make(map[string]map[*Watcher]struct{}),
		history:  history,
		buffer:   buffer,
	}
}

// watch registers a watcher from sinceIndex. storeIndex is the current store
// index. Matching events already in history are queued first (for a stream,
// as many as the buffer holds; the rest follow through overflow and resume).
// An all watcher (WatchAll) is a recursive stream that also receives
// refreshes and hidden keys.
func (h *watcherHub) watch(key string, recursive, stream, all bool, sinceIndex, storeIndex uint64) (*Watcher, *Error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	max := 1
	if stream {
		max = h.buffer
	}
	w := &Watcher{
		key:        key,
		recursive:  recursive,
		stream:     stream,
		all:        all,
		startIndex: storeIndex,
		hub:        h,
	}
	past, next, err := h.history.scan(w.wants, sinceIndex, max, storeIndex)
	if err != nil {
		return nil, err
	}
	w.ch = make(chan *Event, max)
	w.next = next
	for _, e := range past {
		w.ch <- e
	}
	switch {
	case len(past) > 0 && !stream:
		w.removed = true
		close(w.ch)
		return w, nil
	case len(past) == max && next <= h.history.last:
		// The buffer is full and history holds more: let the consumer drain
		// and resume from next.
		w.removed = true
		w.err = ErrWatcherOverflow
		close(w.ch)
		return w, nil
	}
	l := h.watchers[key]
	if l == nil {
		l = make(map[*Watcher]struct{})
		h.watchers[key] = l
	}
	l[w] = struct{}{}
	h.count.Add(1)
	return w, nil
}

// removeLocked unregisters w and closes its channel with err.
func (h *watcherHub) removeLocked(w *Watcher, err error) {
	if w.removed {
		return
	}
	w.removed = true
	w.err = err
	if l := h.watchers[w.key]; l != nil {
		if _, ok := l[w]; ok {
			delete(l, w)
			h.count.Add(-1)
		}
		if len(l) == 0 {
			delete(h.watchers, w.key)
		}
	}
	close(w.ch)
}

// notify records e in history and delivers it to every matching watcher.
func (h *watcherHub) notify(e *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history.add(e)
	if len(h.watchers) == 0 {
		return
	}
	key := e.Node.Key
	// Watchers on the key itself and recursive watchers on its ancestors.
	for p := key; ; p = parentPath(p) {
		for w := range h.watchers[p] {
			if w.wants(e) {
				w.deliverLocked(e)
			}
		}
		if p == "/" {
			break
		}
	}
	// Watchers below a deleted or expired directory.
	if (e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode != nil && e.PrevNode.Dir {
		for p, l := range h.watchers {
			if !isDescendant(p, key) {
				continue
			}
			for w := range l {
				w.deliverLocked(e)
			}
		}
	}
}

// closeAll ends every watcher with err (used when a snapshot replaces the
// store: consumers resume from history).
func (h *watcherHub) closeAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.watchers {
		for w := range l {
			h.removeLocked(w, err)
		}
	}
}

func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
