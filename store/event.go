package store

import (
	"time"
)

// Actions of events, as they appear in the "action" field.
const (
	ActionGet              = "get"
	ActionCreate           = "create"
	ActionSet              = "set"
	ActionUpdate           = "update"
	ActionDelete           = "delete"
	ActionCompareAndSwap   = "compareAndSwap"
	ActionCompareAndDelete = "compareAndDelete"
	ActionExpire           = "expire"
)

// Event is the result of every operation and what watchers receive. Its JSON
// form is byte-compatible with etcd 2.x (field order, omitempty, HTML escaping).
type Event struct {
	Action   string      `json:"action"`
	Node     *NodeExtern `json:"node,omitempty"`
	PrevNode *NodeExtern `json:"prevNode,omitempty"`

	// EtcdIndex is the store index when the event was produced; it feeds the
	// X-Etcd-Index header and is not part of the body.
	EtcdIndex uint64 `json:"-"`
	// Refresh marks a TTL refresh: kept in history, never delivered to watchers.
	Refresh bool `json:"-"`
}

// IsCreated reports whether the event created its node (HTTP 201).
func (e *Event) IsCreated() bool {
	if e.Action == ActionCreate {
		return true
	}
	return e.Action == ActionSet && e.PrevNode == nil
}

// Index is the modified index of the event's node.
func (e *Event) Index() uint64 {
	if e.Node == nil {
		return 0
	}
	return e.Node.ModifiedIndex
}

// NodeExtern is the external (JSON) form of a node.
type NodeExtern struct {
	Key           string      `json:"key,omitempty"`
	Value         *string     `json:"value,omitempty"`
	Dir           bool        `json:"dir,omitempty"`
	Expiration    *time.Time  `json:"expiration,omitempty"`
	TTL           int64       `json:"ttl,omitempty"`
	Nodes         NodeExterns `json:"nodes,omitempty"`
	ModifiedIndex uint64      `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64      `json:"createdIndex,omitempty"`
}

// NodeExterns sorts by key.
type NodeExterns []*NodeExtern

func (ns NodeExterns) Len() int           { return len(ns) }
func (ns NodeExterns) Less(i, j int) bool { return ns[i].Key < ns[j].Key }
func (ns NodeExterns) Swap(i, j int)      { ns[i], ns[j] = ns[j], ns[i] }
