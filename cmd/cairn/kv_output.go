package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/store"
)

// kvNode is a node as etcdctl prints it in JSON (the Go v2 client's Node):
// "nodes" is null when empty, dir, expiration and ttl are left out when
// zero.
type kvNode struct {
	Key           string     `json:"key"`
	Dir           bool       `json:"dir,omitempty"`
	Value         string     `json:"value"`
	Nodes         []*kvNode  `json:"nodes"`
	CreatedIndex  uint64     `json:"createdIndex"`
	ModifiedIndex uint64     `json:"modifiedIndex"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
}

// kvResponse is a successful /v2/keys answer as etcdctl prints it in JSON:
// "prevNode" is null when absent.
type kvResponse struct {
	Action   string  `json:"action"`
	Node     *kvNode `json:"node"`
	PrevNode *kvNode `json:"prevNode"`
	// Index is X-Etcd-Index: the store index when the answer was made (for
	// a watch, when it started).
	Index uint64 `json:"-"`
}

// newKVResponse is ev as etcdctl prints it.
func newKVResponse(ev *store.Event) *kvResponse {
	return &kvResponse{Action: ev.Action, Node: newKVNode(ev.Node), PrevNode: newKVNode(ev.PrevNode), Index: ev.EtcdIndex}
}

func newKVNode(n *store.NodeExtern) *kvNode {
	if n == nil {
		return nil
	}
	k := &kvNode{Key: n.Key, Dir: n.Dir, CreatedIndex: n.CreatedIndex, ModifiedIndex: n.ModifiedIndex,
		Expiration: n.Expiration, TTL: n.TTL}
	if n.Value != nil {
		k.Value = *n.Value
	}
	for _, c := range n.Nodes {
		k.Nodes = append(k.Nodes, newKVNode(c))
	}
	return k
}

// etcdctlError prints an etcd error as etcdctl (the Go v2 client) does.
type etcdctlError struct{ se *store.Error }

func (e etcdctlError) Error() string {
	return fmt.Sprintf("%d: %s (%s) [%d]", e.se.ErrorCode, e.se.Message, e.se.Cause, e.se.Index)
}

func (e etcdctlError) Unwrap() error { return e.se }

// kvError gives a client error etcdctl's exit status: 2 when no member
// answered, 4 for the cluster's answer.
func kvError(err error) error {
	var se *store.Error
	switch {
	case errors.As(err, &se):
		return withStatus(exitServerError, etcdctlError{se})
	case errors.Is(err, v2client.ErrUnavailable) || errors.Is(err, v2client.ErrMayHaveApplied):
		return withStatus(exitBadConnection, clientflags.WithHints(err))
	}
	return withStatus(exitServerError, err)
}

// printResponse is etcdctl's printResponseKey.
func printResponse(w io.Writer, ev *store.Event, format string) error {
	resp := newKVResponse(ev)
	var b strings.Builder
	switch format {
	case outputSimple:
		if resp.Action != "delete" {
			b.WriteString(resp.Node.Value + "\n")
		} else {
			b.WriteString("PrevNode.Value: " + prevValue(resp) + "\n")
		}
	case outputExtended:
		fmt.Fprintf(&b, "Key: %s\nCreated-Index: %d\nModified-Index: %d\n", resp.Node.Key, resp.Node.CreatedIndex, resp.Node.ModifiedIndex)
		if resp.PrevNode != nil {
			fmt.Fprintf(&b, "PrevNode.Value: %s\n", resp.PrevNode.Value)
		}
		fmt.Fprintf(&b, "TTL: %d\nIndex: %d\n", resp.Node.TTL, resp.Index)
		if resp.Action != "delete" {
			b.WriteString("\n" + resp.Node.Value + "\n")
		}
	case outputJSON:
		j, err := json.Marshal(resp)
		if err != nil {
			return err
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func prevValue(resp *kvResponse) string {
	if resp.PrevNode == nil {
		return ""
	}
	return resp.PrevNode.Value
}
