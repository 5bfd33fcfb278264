package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/store"
)

// Instance is one registration: a key under Config.Dir holding a valid
// record.
type Instance struct {
	Key    string
	Name   string // FQDN, lowercase, presentation format
	Record Record
	// Expires is when the key goes away: its own expiration or that of a
	// directory above it (up to Config.Dir), whichever comes first; zero:
	// never. The store removes it at the first expiry sweep at or after
	// that time, so a reader may see an instance whose Expires has passed;
	// it is dead.
	Expires time.Time
}

// Index is a live, in-memory index of the registrations under Config.Dir of
// one store, so that DNS queries never walk the key tree. It follows the
// store through WatchAll (refreshes and hidden keys included), resumes from
// history when its watcher overflows, and rebuilds from GetAll after a
// snapshot restore or when the history no longer reaches back far enough.
//
// Keys whose value is not a valid record, and keys that make no DNS name,
// are left out. Keys that differ only in letter case name the same DNS name;
// each is an instance of it.
//
// Lookups are safe for concurrent use with each other and with Run. They
// share a read lock, held for a walk of at most one map per label; a
// service's instances are listed once after each change and then handed
// out, shared and read-only, without copying.
type Index struct {
	st  *store.Store
	l   layout
	now func() time.Time

	mu    sync.RWMutex
	root  *tnode
	files map[string]*entry       // by key
	dirs  map[string]time.Time    // directories at or below Dir with a TTL
	byIP  map[netip.Addr][]*entry // instances whose host is an IP
	next  uint64                  // store index to follow from; owned by Run
	gen   atomic.Uint64           // see Generation
	stats struct {
		applied           atomic.Uint64 // store index of the last event applied or rebuild
		rebuilds, resumes atomic.Int64
	}
}

// entry is an immutable indexed instance: replaced, never modified.
type entry struct {
	Instance
	own  time.Time  // the key's own expiration
	addr netip.Addr // the host's address, if it is one
}

// tnode is a node of the name tree: the root is the zone apex, children are
// keyed by lowercase label, one level per key segment below Dir.
type tnode struct {
	children map[string]*tnode
	entries  []*entry // keys naming this node (more than one only for keys differing in case)
	count    int      // entries at or below
	// all caches the instances at or below, built by the first lookup after
	// a change (under the read lock, hence atomic) and cleared by writes.
	// Lookups hand it out: it is never modified once stored.
	all atomic.Pointer[[]Instance]
}

// NewIndex returns an index of the registrations of st laid out by cfg,
// already built from the store's current state. now is the clock for the
// ttl of read nodes (nil: time.Now). Call Run to keep it current.
func NewIndex(st *store.Store, cfg Config, now func() time.Time) *Index {
	if now == nil {
		now = time.Now
	}
	x := &Index{st: st, l: cfg.layout(), now: now}
	x.rebuild()
	return x
}

// Run keeps the index current until ctx ends, then returns ctx.Err(). Call
// it once. It fails only when the store refuses the watch for another reason
// than a cleared history, which does not happen with a valid prefix.
func (x *Index) Run(ctx context.Context) error {
	for {
		w, err := x.st.WatchAll(x.l.dir, x.next)
		if err != nil {
			var se *store.Error
			if errors.As(err, &se) && se.ErrorCode == store.EcodeEventIndexCleared {
				x.rebuild()
				continue
			}
			return fmt.Errorf("discovery: watch %s: %w", x.l.dir, err)
		}
		err = x.follow(ctx, w)
		w.Remove()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, store.ErrWatcherOverflow):
			// Every delivered event was applied: resume from history.
			x.next = w.NextIndex()
			x.stats.resumes.Add(1)
		default: // ErrWatcherRestored: the tree was replaced
			x.rebuild()
		}
	}
}

// maxBatch bounds the events applied under one write lock.
const maxBatch = 256

// follow applies w's events until it ends or ctx does, and returns why.
func (x *Index) follow(ctx context.Context, w *store.Watcher) error {
	ch := w.EventChan()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-ch:
			if !ok {
				return w.Err()
			}
			x.mu.Lock()
			x.apply(e)
			last := e.Index()
		batch:
			for range maxBatch - 1 {
				select {
				case e, ok = <-ch:
					if !ok {
						break batch
					}
					x.apply(e)
					last = e.Index()
				default:
					break batch
				}
			}
			x.gen.Add(1)
			x.mu.Unlock()
			x.stats.applied.Store(last)
			if !ok {
				return w.Err()
			}
		}
	}
}

// rebuild replaces the index with one built from the store's current state.
func (x *Index) rebuild() {
	nodes, index := x.st.GetAll(x.l.dir, x.now())
	fresh := &Index{l: x.l, root: &tnode{}, files: map[string]*entry{}, dirs: map[string]time.Time{}, byIP: map[netip.Addr][]*entry{}}
	for _, n := range nodes { // parents first: directory TTLs are known before their files
		fresh.upsert(n, false)
	}
	x.mu.Lock()
	x.root, x.files, x.dirs, x.byIP = fresh.root, fresh.files, fresh.dirs, fresh.byIP
	x.gen.Add(1)
	x.mu.Unlock()
	x.next = index + 1
	x.stats.applied.Store(index)
	x.stats.rebuilds.Add(1)
}

// apply updates the index with one store event. Called with mu held.
func (x *Index) apply(e *store.Event) {
	if e.Node == nil {
		return
	}
	switch e.Action {
	case store.ActionSet, store.ActionCreate, store.ActionUpdate, store.ActionCompareAndSwap:
		x.upsert(e.Node, e.Refresh)
	case store.ActionDelete, store.ActionExpire, store.ActionCompareAndDelete:
		x.removeAt(e.Node.Key)
	}
}

// upsert records the state of node n. A refresh keeps the parsed record.
func (x *Index) upsert(n *store.NodeExtern, refresh bool) {
	var exp time.Time
	if n.Expiration != nil {
		exp = *n.Expiration
	}
	if n.Dir {
		x.remove(n.Key) // a set may replace a file with a directory
		x.setDirExpiry(n.Key, exp)
		return
	}
	old := x.files[n.Key]
	var rec Record
	var ok bool
	switch {
	case refresh && old != nil:
		rec = old.Record
	case n.Value == nil:
		x.remove(n.Key)
		return
	default:
		var err error
		if rec, err = parseStored(*n.Value); err != nil {
			x.remove(n.Key)
			return
		}
	}
	var name string
	if old != nil {
		name = old.Name // a function of the key alone
	} else if name, ok = x.l.name(n.Key); !ok {
		return
	}
	e := &entry{Instance: Instance{Key: n.Key, Name: name, Record: rec}, own: exp}
	e.Expires = x.expiry(n.Key, exp)
	e.addr, _ = rec.addr()
	x.put(e)
}

// expiry is the earlier of own and the expirations of the directories above
// key, up to Dir.
func (x *Index) expiry(key string, own time.Time) time.Time {
	if len(x.dirs) == 0 {
		return own
	}
	for p := key; len(p) > len(x.l.dir); {
		p = p[:max(strings.LastIndexByte(p, '/'), 1)]
		if t, ok := x.dirs[p]; ok && (own.IsZero() || t.Before(own)) {
			own = t
		}
	}
	return own
}

// setDirExpiry records a directory's expiration and moves the Expires of
// the instances below it.
func (x *Index) setDirExpiry(dir string, exp time.Time) {
	old, had := x.dirs[dir]
	switch {
	case exp.IsZero() && !had, had && old.Equal(exp):
		return
	case exp.IsZero():
		delete(x.dirs, dir)
	default:
		x.dirs[dir] = exp
	}
	for _, e := range x.below(dir) {
		ne := *e
		ne.Expires = x.expiry(e.Key, e.own)
		x.put(&ne)
	}
}

// removeAt drops key and everything below it.
func (x *Index) removeAt(key string) {
	if key == x.l.dir || isBelow(x.l.dir, key) {
		x.root, x.files, x.dirs, x.byIP = &tnode{}, map[string]*entry{}, map[string]time.Time{}, map[netip.Addr][]*entry{}
		return
	}
	for d := range x.dirs {
		if d == key || isBelow(d, key) {
			delete(x.dirs, d)
		}
	}
	x.remove(key)
	for _, e := range x.below(key) {
		x.remove(e.Key)
	}
}

// below lists the entries strictly below the key dir.
func (x *Index) below(dir string) []*entry {
	labs, ok := x.labels(dir)
	if !ok {
		return nil
	}
	n := x.root
	for _, lab := range labs {
		if n = n.children[lab]; n == nil {
			return nil
		}
	}
	return slices.DeleteFunc(n.collect(nil), func(e *entry) bool { return !isBelow(e.Key, dir) })
}

// labels are the lowercase labels of a key below Dir, in key order.
func (x *Index) labels(key string) ([]string, bool) {
	rel, ok := x.l.rel(key)
	if !ok {
		return nil, false
	}
	if rel == "" {
		return nil, true
	}
	labs := strings.Split(rel, "/")
	for i, s := range labs {
		labs[i] = lowerSeg(s)
	}
	return labs, true
}

// put inserts e, replacing the entry of the same key.
func (x *Index) put(e *entry) {
	x.remove(e.Key)
	labs, _ := x.labels(e.Key)
	n := x.root
	n.count++
	n.all.Store(nil)
	for _, lab := range labs {
		c := n.children[lab]
		if c == nil {
			if n.children == nil {
				n.children = map[string]*tnode{}
			}
			c = &tnode{}
			n.children[lab] = c
		}
		n = c
		n.count++
		n.all.Store(nil)
	}
	n.entries = append(n.entries, e)
	x.files[e.Key] = e
	if e.addr.IsValid() {
		x.byIP[e.addr] = append(x.byIP[e.addr], e)
	}
}

// remove drops the entry of key, if any.
func (x *Index) remove(key string) {
	e := x.files[key]
	if e == nil {
		return
	}
	delete(x.files, key)
	if e.addr.IsValid() {
		if l := without(x.byIP[e.addr], e); len(l) > 0 {
			x.byIP[e.addr] = l
		} else {
			delete(x.byIP, e.addr)
		}
	}
	labs, _ := x.labels(key)
	n := x.root
	n.count--
	n.all.Store(nil)
	for _, lab := range labs {
		c := n.children[lab]
		c.count--
		c.all.Store(nil)
		if c.count == 0 {
			delete(n.children, lab) // nothing left at or below: prune
			return
		}
		n = c
	}
	n.entries = without(n.entries, e)
}

// without returns l minus e.
func without(l []*entry, e *entry) []*entry {
	return slices.DeleteFunc(l, func(o *entry) bool { return o == e })
}

// instances is every instance at or below n, cached. Called with mu held
// for reading at least; the result is shared and never modified.
func (n *tnode) instances() []Instance {
	if p := n.all.Load(); p != nil {
		return *p
	}
	all := make([]Instance, 0, n.count)
	for _, e := range n.collect(nil) {
		all = append(all, e.Instance)
	}
	n.all.Store(&all)
	return all
}

// collect appends the entries at or below n to out.
func (n *tnode) collect(out []*entry) []*entry {
	out = append(out, n.entries...)
	for _, c := range n.children {
		out = c.collect(out)
	}
	return out
}

// isBelow reports whether p lies strictly below dir.
func isBelow(p, dir string) bool {
	if dir == "/" {
		return len(p) > 1
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// match calls fn for every node that name (fully qualified, presentation
// format) reaches and that has an instance at or below it, a "*" label
// matching any one label. Called with mu held.
func (x *Index) match(name string, fn func(n *tnode)) {
	var buf [16]string
	if labs, ok := x.l.below(buf[:0], name); ok {
		matchNode(x.root, labs, fn)
	}
}

func matchNode(n *tnode, labs []string, fn func(n *tnode)) {
	for i, lab := range labs {
		if lab == "*" {
			for _, c := range n.children {
				matchNode(c, labs[i+1:], fn)
			}
			return
		}
		if n = n.children[lab]; n == nil {
			return
		}
	}
	if n.count > 0 {
		fn(n)
	}
}

// Lookup returns the instances name stands for, SkyDNS style: the instance
// of that name, and every instance below it when it names a directory (a
// service), at any depth; a "*" label matches any one label. Names are case
// insensitive, fully qualified, in presentation format; a name outside the
// zone has none. The result is in no particular order and is shared with
// the index and other callers: read it, never modify it. Instances past
// their Expires are included until the store expires them: filter with the
// query's time.
func (x *Index) Lookup(name string) []Instance {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var first, merged []Instance
	nodes := 0
	x.match(name, func(n *tnode) {
		l := n.instances()
		switch nodes++; nodes {
		case 1:
			first = l
		case 2: // wildcards: a new slice, never an append to a shared one
			merged = append(append(make([]Instance, 0, len(first)+len(l)), first...), l...)
		default:
			merged = append(merged, l...)
		}
	})
	if nodes > 1 {
		return merged
	}
	return first
}

// Exists reports whether name is the name of an instance or of an ancestor
// of one (for NXDOMAIN versus NODATA), with Lookup's matching.
func (x *Index) Exists(name string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	found := false
	x.match(name, func(*tnode) { found = true })
	return found
}

// ByIP returns the instances whose host is ip (IPv4-mapped addresses match
// their IPv4 form), for PTR answers, in no particular order.
func (x *Index) ByIP(ip netip.Addr) []Instance {
	ip = ip.Unmap().WithZone("")
	x.mu.RLock()
	defer x.mu.RUnlock()
	l := x.byIP[ip]
	if len(l) == 0 {
		return nil
	}
	out := make([]Instance, len(l))
	for i, e := range l {
		out[i] = e.Instance
	}
	return out
}

// Generation is a number that changes whenever what Lookup, Exists or ByIP
// answer may have changed (any applied event or rebuild; refreshes too). A
// reader that loads it before a lookup and finds it unchanged later knows
// that its lookup is still current, except for the passing of time (an
// instance's Expires), which the reader checks itself. Answer caches are
// keyed by it.
func (x *Index) Generation() uint64 { return x.gen.Load() }

// Len is the number of instances indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.root.count
}
