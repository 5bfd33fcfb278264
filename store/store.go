package store

import (
	"path"
	"sync"
	"time"
)

// TTLOptions are the expiration and refresh options of a write.
type TTLOptions struct {
	// ExpireTime is the absolute expiration; zero means permanent.
	ExpireTime time.Time
	// Refresh keeps the value and only resets the TTL; the event goes to
	// history but not to watchers.
	Refresh bool
}

// Store is the etcd v2 key tree. It is safe for concurrent use; writes are
// expected to come from one applier (the raft FSM) in log order.
type Store struct {
	mu    sync.RWMutex
	root  *node
	index uint64
	ttl   ttlHeap
	hub   *watcherHub
	stats Stats
	cfg   Config
}

// New returns an empty store.
func New(cfg Config) *Store {
	cfg = cfg.withDefaults()
	return &Store{
		root: newDir("/", 0, nil, time.Time{}),
		hub:  newWatcherHub(newEventHistory(cfg.HistorySize, cfg.HistoryBytes), cfg.WatchBuffer),
		cfg:  cfg,
	}
}

// Index is the current store index (X-Etcd-Index).
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Stats returns the /v2/stats/store counters.
func (s *Store) Stats() StatsSnapshot {
	return s.stats.snapshot(uint64(s.hub.count.Load()))
}

// TTLKeys is the number of nodes with an expiration (keys and directories
// kept alive by refreshes, such as service registrations).
func (s *Store) TTLKeys() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ttl.Len()
}

// WatcherCount is the number of registered watchers.
func (s *Store) WatcherCount() int { return int(s.hub.count.Load()) }

// HistoryRange is the index range [start, last] kept for watches.
func (s *Store) HistoryRange() (start, last uint64) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.hub.history.start, s.hub.history.last
}

// HistoryUsage is the number of events kept for watches and their size as
// Config.HistoryBytes counts it.
func (s *Store) HistoryUsage() (events int, bytes int64) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.hub.history.size, s.hub.history.bytes
}

// cleanPath is etcd's path.Clean(path.Join("/", p)).
func cleanPath(p string) string { return path.Clean("/" + p) }

// Get returns the node at nodePath as seen at now (which only affects the
// reported ttl).
func (s *Store) Get(nodePath string, recursive, sorted bool, now time.Time) (*Event, error) {
	nodePath = cleanPath(nodePath)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.internalGet(nodePath)
	if err != nil {
		s.stats.GetFail.Add(1)
		return nil, err
	}
	s.stats.GetSuccess.Add(1)
	e := &Event{Action: ActionGet, EtcdIndex: s.index}
	if n == s.root {
		// The root trims to "" and has no indexes in etcd 2.x.
		e.Node = &NodeExtern{Dir: true, Nodes: n.listChildren(recursive, sorted, now)}
		return e, nil
	}
	e.Node = n.repr(false, sorted, now)
	if n.isDir() {
		e.Node.Nodes = n.listChildren(recursive, sorted, now)
	}
	return e, nil
}

// internalGet walks to nodePath. A missing component is 100 with that
// component's path as cause; a file met on the way is 104.
func (s *Store) internalGet(nodePath string) (*node, *Error) {
	cur := s.root
	if nodePath == "/" {
		return cur, nil
	}
	rest := nodePath[1:]
	for {
		var name string
		i := indexByte(rest, '/')
		if i < 0 {
			name, rest = rest, ""
		} else {
			name, rest = rest[:i], rest[i+1:]
		}
		if !cur.isDir() {
			return nil, NewError(EcodeNotDir, cur.path, s.index)
		}
		child, ok := cur.children[name]
		if !ok {
			return nil, NewError(EcodeKeyNotFound, path.Join(cur.path, name), s.index)
		}
		cur = child
		if rest == "" {
			return cur, nil
		}
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func (s *Store) isReadOnly(nodePath string) bool { return nodePath == "/" }

func (s *Store) errRoot() *Error { return NewError(EcodeRootROnly, "/", s.index) }

// Set creates or replaces the node at nodePath (a file, or with dir an empty
// directory). Replacing gives the node a new createdIndex and drops its TTL.
func (s *Store) Set(nodePath string, dir bool, value string, opts TTLOptions, now time.Time) (*Event, error) {
	nodePath = cleanPath(nodePath)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.set(nodePath, dir, value, opts, now)
	if err != nil {
		s.stats.SetFail.Add(1)
		return nil, err
	}
	s.stats.SetSuccess.Add(1)
	return e, nil
}

func (s *Store) set(nodePath string, dir bool, value string, opts TTLOptions, now time.Time) (*Event, *Error) {
	if s.isReadOnly(nodePath) {
		return nil, s.errRoot()
	}
	prev, getErr := s.internalGet(nodePath)
	if getErr != nil && getErr.ErrorCode != EcodeKeyNotFound {
		return nil, getErr
	}
	if opts.Refresh {
		if getErr != nil {
			return nil, getErr
		}
		if prev.isDir() {
			return nil, NewError(EcodeNotFile, nodePath, s.index)
		}
		value = prev.value
	}
	e, err := s.internalCreate(nodePath, dir, value, false, true, opts.ExpireTime, ActionSet, now)
	if err != nil {
		return nil, err
	}
	s.commit(e, opts.Refresh)
	return e, nil
}

// Create creates the node at nodePath, failing with 105 if it exists. With
// unique it creates an in-order child of nodePath named after the new index,
// zero-padded to 20 digits.
func (s *Store) Create(nodePath string, dir bool, value string, unique bool, opts TTLOptions, now time.Time) (*Event, error) {
	nodePath = cleanPath(nodePath)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.internalCreate(nodePath, dir, value, unique, false, opts.ExpireTime, ActionCreate, now)
	if err != nil {
		s.stats.CreateFail.Add(1)
		return nil, err
	}
	s.stats.CreateSuccess.Add(1)
	s.commit(e, false)
	return e, nil
}

func (s *Store) internalCreate(nodePath string, dir bool, value string, unique, replace bool,
	expire time.Time, action string, now time.Time) (*Event, *Error) {
	next := s.index + 1
	if unique {
		nodePath = cleanPath(nodePath + "/" + pad20(next))
	}
	if s.isReadOnly(nodePath) {
		return nil, s.errRoot()
	}
	dirName, nodeName := path.Split(nodePath)
	d, err := s.walkCreateDirs(dirName, next)
	if err != nil {
		return nil, err
	}
	e := &Event{Action: action, Node: &NodeExtern{Key: nodePath, ModifiedIndex: next, CreatedIndex: next}}
	if old, ok := d.children[nodeName]; ok {
		if !replace {
			return nil, NewError(EcodeNodeExist, nodePath, s.index)
		}
		if old.isDir() {
			return nil, NewError(EcodeNotFile, nodePath, s.index)
		}
		e.PrevNode = old.repr(false, false, now)
		old.remove(s, false, false, nil)
	}
	var n *node
	if dir {
		e.Node.Dir = true
		n = newDir(nodePath, next, d, expire)
	} else {
		v := value
		e.Node.Value = &v
		n = newFile(nodePath, value, next, d, expire)
	}
	s.attach(d, nodeName, n)
	if !n.isPermanent() {
		s.ttl.push(n)
		e.Node.Expiration, e.Node.TTL = n.expirationAndTTL(now)
	}
	s.index = next
	e.EtcdIndex = next
	return e, nil
}

// attach links n under d, materializing parents created by walkCreateDirs.
func (s *Store) attach(d *node, name string, n *node) {
	d.children[name] = n
}

// walkCreateDirs walks dirName creating missing directories with index; a
// file met on the way is 104 (etcd 3.4 answers "Not a directory" here).
// Nothing is created when an error is returned.
func (s *Store) walkCreateDirs(dirName string, index uint64) (*node, *Error) {
	dirName = cleanPath(dirName)
	cur := s.root
	if dirName == "/" {
		return cur, nil
	}
	rest := dirName[1:]
	var created []*node
	for rest != "" {
		var name string
		if i := indexByte(rest, '/'); i < 0 {
			name, rest = rest, ""
		} else {
			name, rest = rest[:i], rest[i+1:]
		}
		child, ok := cur.children[name]
		if ok {
			if !child.isDir() {
				for i := len(created) - 1; i >= 0; i-- {
					c := created[i]
					delete(c.parent.children, c.name())
				}
				return nil, NewError(EcodeNotDir, child.path, s.index)
			}
			cur = child
			continue
		}
		child = newDir(path.Join(cur.path, name), index, cur, time.Time{})
		cur.children[name] = child
		created = append(created, child)
		cur = child
	}
	return cur, nil
}

// Update changes the value (files) and TTL of an existing node, keeping its
// createdIndex. Without a TTL the node becomes permanent.
func (s *Store) Update(nodePath string, value string, opts TTLOptions, now time.Time) (*Event, error) {
	nodePath = cleanPath(nodePath)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.update(nodePath, value, opts, now)
	if err != nil {
		s.stats.UpdateFail.Add(1)
		return nil, err
	}
	s.stats.UpdateSuccess.Add(1)
	return e, nil
}

func (s *Store) update(nodePath string, value string, opts TTLOptions, now time.Time) (*Event, *Error) {
	if s.isReadOnly(nodePath) {
		return nil, s.errRoot()
	}
	n, err := s.internalGet(nodePath)
	if err != nil {
		return nil, err
	}
	if n.isDir() && value != "" {
		return nil, NewError(EcodeNotFile, nodePath, s.index)
	}
	if opts.Refresh {
		value = n.value
	}
	next := s.index + 1
	e := &Event{Action: ActionUpdate, EtcdIndex: next,
		Node:     &NodeExtern{Key: nodePath, ModifiedIndex: next, CreatedIndex: n.createdIndex},
		PrevNode: n.repr(false, false, now)}
	// Unlike etcd 2.x, a directory's modifiedIndex moves too (reference §3.9).
	n.modifiedIndex = next
	if n.isDir() {
		e.Node.Dir = true
	} else {
		n.value = value
		v := value
		e.Node.Value = &v
	}
	s.setExpire(n, opts.ExpireTime)
	e.Node.Expiration, e.Node.TTL = n.expirationAndTTL(now)
	s.index = next
	s.commit(e, opts.Refresh)
	return e, nil
}

func (s *Store) setExpire(n *node, t time.Time) {
	n.expireTime = unixNano(t)
	s.ttl.update(n)
}

// CompareAndSwap updates a file if prevValue (when not empty) and prevIndex
// (when not 0) match it.
func (s *Store) CompareAndSwap(nodePath, prevValue string, prevIndex uint64, value string, opts TTLOptions, now time.Time) (*Event, error) {
	nodePath = cleanPath(nodePath)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.compareAndSwap(nodePath, prevValue, prevIndex, value, opts, now)
	if err != nil {
		s.stats.CompareAndSwapFail.Add(1)
		return nil, err
	}
	s.stats.CompareAndSwapSuccess.Add(1)
	return e, nil
}

func (s *Store) compareAndSwap(nodePath, prevValue string, prevIndex uint64, value string, opts TTLOptions, now time.Time) (*Event, *Error) {
	if s.isReadOnly(nodePath) {
		return nil, s.errRoot()
	}
	n, err := s.internalGet(nodePath)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, NewError(EcodeNotFile, nodePath, s.index)
	}
	if ok, cause := n.compare(prevValue, prevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, s.index)
	}
	if opts.Refresh {
		value = n.value
	}
	next := s.index + 1
	e := &Event{Action: ActionCompareAndSwap, EtcdIndex: next,
		Node:     &NodeExtern{Key: nodePath, ModifiedIndex: next, CreatedIndex: n.createdIndex},
		PrevNode: n.repr(false, false, now)}
	n.value = value
	n.modifiedIndex = next
	v := value
	e.Node.Value = &v
	s.setExpire(n, opts.ExpireTime)
	e.Node.Expiration, e.Node.TTL = n.expirationAndTTL(now)
	s.index = next
	s.commit(e, opts.Refresh)
	return e, nil
}

// Delete removes a file, or with dir an empty directory, or with recursive
// (which implies dir) a whole subtree.
func (s *Store) Delete(nodePath string, dir, recursive bool, now time.Time) (*Event, error) {
	nodePath = cleanPath(nodePath)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.delete(nodePath, dir, recursive, now)
	if err != nil {
		s.stats.DeleteFail.Add(1)
		return nil, err
	}
	s.stats.DeleteSuccess.Add(1)
	return e, nil
}

func (s *Store) delete(nodePath string, dir, recursive bool, now time.Time) (*Event, *Error) {
	if s.isReadOnly(nodePath) {
		return nil, s.errRoot()
	}
	if recursive {
		dir = true
	}
	n, err := s.internalGet(nodePath)
	if err != nil {
		return nil, err
	}
	next := s.index + 1
	e := &Event{Action: ActionDelete, EtcdIndex: next,
		Node:     &NodeExtern{Key: nodePath, ModifiedIndex: next, CreatedIndex: n.createdIndex, Dir: n.isDir()},
		PrevNode: n.repr(false, false, now)}
	if err := n.remove(s, dir, recursive, nil); err != nil {
		return nil, err
	}
	s.index = next
	s.commit(e, false)
	return e, nil
}

// CompareAndDelete deletes a file if prevValue (when not empty) and prevIndex
// (when not 0) match it.
func (s *Store) CompareAndDelete(nodePath, prevValue string, prevIndex uint64, now time.Time) (*Event, error) {
	nodePath = cleanPath(nodePath)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.compareAndDelete(nodePath, prevValue, prevIndex, now)
	if err != nil {
		s.stats.CompareAndDeleteFail.Add(1)
		return nil, err
	}
	s.stats.CompareAndDeleteSuccess.Add(1)
	return e, nil
}

func (s *Store) compareAndDelete(nodePath, prevValue string, prevIndex uint64, now time.Time) (*Event, *Error) {
	if s.isReadOnly(nodePath) {
		// etcd has no read-only check here: the root fails the is-a-file
		// check, with an empty cause. Kept for client compatibility.
		return nil, NewError(EcodeNotFile, "", s.index)
	}
	n, err := s.internalGet(nodePath)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, NewError(EcodeNotFile, nodePath, s.index)
	}
	if ok, cause := n.compare(prevValue, prevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, s.index)
	}
	next := s.index + 1
	e := &Event{Action: ActionCompareAndDelete, EtcdIndex: next,
		Node:     &NodeExtern{Key: nodePath, ModifiedIndex: next, CreatedIndex: n.createdIndex},
		PrevNode: n.repr(false, false, now)}
	n.remove(s, false, false, nil)
	s.index = next
	s.commit(e, false)
	return e, nil
}

// DeleteExpiredKeys removes every node whose expiration is at or before now,
// one expire event (and one index) per expired node, soonest first.
func (s *Store) DeleteExpiredKeys(now time.Time) []*Event {
	cutoff := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	var events []*Event
	for {
		n := s.ttl.top()
		if n == nil || n.expireTime > cutoff {
			return events
		}
		next := s.index + 1
		e := &Event{Action: ActionExpire, EtcdIndex: next,
			Node:     &NodeExtern{Key: n.path, ModifiedIndex: next, CreatedIndex: n.createdIndex, Dir: n.isDir()},
			PrevNode: n.repr(false, false, now)}
		n.remove(s, true, true, nil)
		s.ttl.remove(n) // already gone unless remove skipped it; harmless
		s.index = next
		s.stats.ExpireCount.Add(1)
		s.commit(e, false)
		events = append(events, e)
	}
}

// NextExpiration is the earliest expiration in the store, if any.
func (s *Store) NextExpiration() (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.ttl.top()
	if n == nil {
		return time.Time{}, false
	}
	return time.Unix(0, n.expireTime), true
}

// commit records e in history and notifies watchers (refreshes only go to
// history).
func (s *Store) commit(e *Event, refresh bool) {
	e.Refresh = refresh
	s.hub.notify(e)
}

// Watch watches key from sinceIndex (0: from the next index). With a
// sinceIndex inside the history the first matching past event (stream: every
// one) is delivered at once; one older than the history is error 401.
func (s *Store) Watch(key string, recursive, stream bool, sinceIndex uint64) (*Watcher, error) {
	key = cleanPath(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sinceIndex == 0 {
		sinceIndex = s.index + 1
	}
	w, err := s.hub.watch(key, recursive, stream, false, sinceIndex, s.index)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// WatchAll is a stream watch of every change at or below prefix for
// in-process consumers that mirror part of the tree (the discovery index).
// Unlike a recursive Watch it also delivers refresh events (Event.Refresh,
// whose node carries the new expiration) and events of hidden keys, which
// etcd clients never see. Deletes and expiries of an ancestor directory are
// delivered as for Watch. sinceIndex 0 means from the next index; an index
// older than the history is error 401. Like any stream watcher it ends with
// ErrWatcherOverflow or ErrWatcherRestored, and the consumer resumes from
// NextIndex (or, after a restore or a 401, re-reads with GetAll).
func (s *Store) WatchAll(prefix string, sinceIndex uint64) (*Watcher, error) {
	prefix = cleanPath(prefix)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sinceIndex == 0 {
		sinceIndex = s.index + 1
	}
	w, err := s.hub.watch(prefix, true, true, true, sinceIndex, s.index)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// GetAll returns every node at or below nodePath (nodePath itself unless it
// is the root), hidden ones included, flat (no Nodes lists), parents before
// their children, and the store index they were read at: the starting state
// for a WatchAll from index+1. A missing nodePath gives no nodes. It is an
// internal read: the /v2/stats/store counters do not count it.
func (s *Store) GetAll(nodePath string, now time.Time) ([]*NodeExtern, uint64) {
	nodePath = cleanPath(nodePath)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.internalGet(nodePath)
	if err != nil {
		return nil, s.index
	}
	var out []*NodeExtern
	var walk func(n *node)
	walk = func(n *node) {
		if n != s.root {
			out = append(out, n.repr(false, false, now))
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(n)
	return out, s.index
}

// pad20 is fmt.Sprintf("%020d", i) without fmt.
func pad20(i uint64) string {
	s := utoa(i)
	const zeros = "00000000000000000000"
	if len(s) >= 20 {
		return s
	}
	return zeros[:20-len(s)] + s
}
