package store

import (
	"errors"
	"sync"
)

// ErrWatcherOverflow closes a watcher whose consumer fell behind: its buffer
// was full when an event arrived. No event is lost: the consumer resumes with
// a new watch from NextIndex, which replays the missed events from history.
var ErrWatcherOverflow = errors.New("store: watcher fell behind; resume from its next index")

// ErrWatcherRestored closes every watcher when a snapshot replaces the store;
// like an overflow, the consumer resumes from NextIndex.
var ErrWatcherRestored = errors.New("store: store restored from a snapshot; resume from the watcher's next index")

// Watcher delivers the events of one watch. A one-shot watcher delivers one
// event; a stream watcher delivers every matching event in index order until
// it is removed. The channel is closed when the watcher ends; Err says why.
type Watcher struct {
	ch         chan *Event
	key        string
	recursive  bool
	stream     bool
	all        bool // WatchAll: refreshes and hidden keys too
	startIndex uint64

	hub *watcherHub

	// guarded by hub.mu
	next    uint64 // the index the next delivered event must have at least
	removed bool
	err     error
	once    sync.Once
}

// EventChan delivers the events; it is closed when the watcher ends.
func (w *Watcher) EventChan() <-chan *Event { return w.ch }

// StartIndex is the store index when the watch was created: etcd's
// X-Etcd-Index for watch responses.
func (w *Watcher) StartIndex() uint64 { return w.startIndex }

// Err is nil after Remove or a one-shot delivery, ErrWatcherOverflow or
// ErrWatcherRestored when the consumer must resume from NextIndex.
func (w *Watcher) Err() error {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	return w.err
}

// NextIndex is the index to resume from after the channel closed.
func (w *Watcher) NextIndex() uint64 {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	return w.next
}

// Remove ends the watch. It is safe to call more than once.
func (w *Watcher) Remove() {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	w.hub.removeLocked(w, nil)
}

// wants reports whether the watcher receives e.
func (w *Watcher) wants(e *Event) bool {
	if w.all {
		return matchesAll(e, w.key)
	}
	return matches(e, w.key, w.recursive)
}

// deliverLocked hands e to the watcher without blocking; a full buffer ends
// the watcher with ErrWatcherOverflow.
func (w *Watcher) deliverLocked(e *Event) {
	if w.removed || e.Index() < w.next {
		return
	}
	select {
	case w.ch <- e:
		w.next = e.Index() + 1
		if !w.stream {
			w.hub.removeLocked(w, nil)
		}
	default:
		w.hub.removeLocked(w, ErrWatcherOverflow)
	}
}
