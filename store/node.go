package store

import (
	"path"
	"sort"
	"time"
)

// node is one key or directory of the tree. A directory has a non-nil
// children map (possibly empty); a file has a nil map and a value.
type node struct {
	path          string
	parent        *node
	createdIndex  uint64
	modifiedIndex uint64
	value         string
	children      map[string]*node
	// expireTime is unix nanoseconds; 0 means permanent.
	expireTime int64
	// heapIndex is the node's position in the TTL heap, -1 when not in it.
	heapIndex int
}

func newFile(p, value string, index uint64, parent *node, expire time.Time) *node {
	return &node{path: p, parent: parent, createdIndex: index, modifiedIndex: index,
		value: value, expireTime: unixNano(expire), heapIndex: -1}
}

func newDir(p string, index uint64, parent *node, expire time.Time) *node {
	return &node{path: p, parent: parent, createdIndex: index, modifiedIndex: index,
		children: make(map[string]*node), expireTime: unixNano(expire), heapIndex: -1}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	n := t.UnixNano()
	if n == 0 {
		n = 1 // the epoch itself: long expired, but not "permanent"
	}
	return n
}

func (n *node) isDir() bool       { return n.children != nil }
func (n *node) isPermanent() bool { return n.expireTime == 0 }
func (n *node) name() string      { return path.Base(n.path) }

// isHidden reports whether the node's own name starts with '_'.
func (n *node) isHidden() bool {
	name := n.name()
	return len(name) > 0 && name[0] == '_'
}

// compare checks prevValue (if not empty) and prevIndex (if not 0).
func (n *node) compare(prevValue string, prevIndex uint64) (ok bool, cause string) {
	valueOK := prevValue == "" || prevValue == n.value
	indexOK := prevIndex == 0 || prevIndex == n.modifiedIndex
	switch {
	case valueOK && indexOK:
		return true, ""
	case !valueOK && !indexOK:
		return false, "[" + prevValue + " != " + n.value + "] [" + utoa(prevIndex) + " != " + utoa(n.modifiedIndex) + "]"
	case !valueOK:
		return false, "[" + prevValue + " != " + n.value + "]"
	default:
		return false, "[" + utoa(prevIndex) + " != " + utoa(n.modifiedIndex) + "]"
	}
}

// expirationAndTTL is the node's expiration in UTC and its remaining TTL in
// whole seconds, rounded up, as seen at now.
func (n *node) expirationAndTTL(now time.Time) (*time.Time, int64) {
	if n.isPermanent() {
		return nil, 0
	}
	t := time.Unix(0, n.expireTime).UTC()
	d := t.Sub(now)
	ttl := d / time.Second
	if d%time.Second > 0 {
		ttl++
	}
	return &t, int64(ttl)
}

// repr is the external form of n. Directories list their children only when
// recursive; hidden children are never listed.
func (n *node) repr(recursive, sorted bool, now time.Time) *NodeExtern {
	e := &NodeExtern{Key: n.path, ModifiedIndex: n.modifiedIndex, CreatedIndex: n.createdIndex}
	e.Expiration, e.TTL = n.expirationAndTTL(now)
	if !n.isDir() {
		v := n.value
		e.Value = &v
		return e
	}
	e.Dir = true
	if recursive {
		e.Nodes = n.listChildren(recursive, sorted, now)
	}
	return e
}

// listChildren is the external form of n's visible children.
func (n *node) listChildren(recursive, sorted bool, now time.Time) NodeExterns {
	if len(n.children) == 0 {
		return nil
	}
	out := make(NodeExterns, 0, len(n.children))
	for _, c := range n.children {
		if c.isHidden() {
			continue
		}
		out = append(out, c.repr(recursive, sorted, now))
	}
	if sorted {
		sort.Sort(out)
	}
	return out
}

// remove detaches n (and, for a directory, its whole subtree) from the tree.
// callback runs for every removed path, deepest first, so that watchers of
// descendants learn about the removal.
func (n *node) remove(s *Store, dir, recursive bool, callback func(path string)) *Error {
	if n.isDir() {
		if !dir {
			return NewError(EcodeNotFile, n.path, s.index)
		}
		if len(n.children) != 0 && !recursive {
			return NewError(EcodeDirNotEmpty, n.path, s.index)
		}
		for _, c := range n.children {
			c.remove(s, true, true, callback)
		}
	}
	if n.parent != nil {
		if cur := n.parent.children[n.name()]; cur == n {
			delete(n.parent.children, n.name())
		}
	}
	if callback != nil {
		callback(n.path)
	}
	if !n.isPermanent() {
		s.ttl.remove(n)
	}
	return nil
}

// utoa formats an unsigned integer without fmt.
func utoa(u uint64) string {
	var buf [20]byte
	i := len(buf)
	for u >= 10 {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	i--
	buf[i] = byte('0' + u)
	return string(buf[i:])
}
