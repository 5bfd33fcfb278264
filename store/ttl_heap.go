package store

import "container/heap"

// ttlHeap orders the nodes that have a TTL by expiration, soonest first, so
// an expiry sweep touches only what expires.
type ttlHeap struct {
	nodes []*node
}

func (h *ttlHeap) Len() int { return len(h.nodes) }

// Less orders by expiration, then by path, so that the order of simultaneous
// expiries (and so the events and indexes they produce) does not depend on the
// order nodes entered the heap: a replica restored from a snapshot must expire
// exactly as one that replayed the log. A directory sorts before its children,
// so it expires as one event that carries them.
func (h *ttlHeap) Less(i, j int) bool {
	a, b := h.nodes[i], h.nodes[j]
	if a.expireTime != b.expireTime {
		return a.expireTime < b.expireTime
	}
	return a.path < b.path
}
func (h *ttlHeap) Swap(i, j int) {
	h.nodes[i], h.nodes[j] = h.nodes[j], h.nodes[i]
	h.nodes[i].heapIndex = i
	h.nodes[j].heapIndex = j
}
func (h *ttlHeap) Push(x any) {
	n := x.(*node)
	n.heapIndex = len(h.nodes)
	h.nodes = append(h.nodes, n)
}
func (h *ttlHeap) Pop() any {
	old := h.nodes
	n := old[len(old)-1]
	old[len(old)-1] = nil
	h.nodes = old[:len(old)-1]
	n.heapIndex = -1
	return n
}

func (h *ttlHeap) top() *node {
	if len(h.nodes) == 0 {
		return nil
	}
	return h.nodes[0]
}

func (h *ttlHeap) push(n *node) { heap.Push(h, n) }

func (h *ttlHeap) remove(n *node) {
	if n.heapIndex >= 0 && n.heapIndex < len(h.nodes) && h.nodes[n.heapIndex] == n {
		heap.Remove(h, n.heapIndex)
	}
}

// update re-places n after its expireTime changed, adding or removing it as
// it gained or lost a TTL.
func (h *ttlHeap) update(n *node) {
	inHeap := n.heapIndex >= 0 && n.heapIndex < len(h.nodes) && h.nodes[n.heapIndex] == n
	switch {
	case inHeap && n.isPermanent():
		heap.Remove(h, n.heapIndex)
	case inHeap:
		heap.Fix(h, n.heapIndex)
	case !n.isPermanent():
		heap.Push(h, n)
	}
}
