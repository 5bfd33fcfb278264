package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/managed"
)

// certKV is managed.KV on a cluster member: writes are raft proposals
// (forwarded to the leader from a follower), reads wait for ReadBarrier
// and then read the local replica, so they are linearizable.
type certKV struct{ n *cluster.Node }

var _ managed.KV = certKV{}

func (k certKV) Get(ctx context.Context, key string, recursive bool) (managed.KVEntry, error) {
	if err := k.n.ReadBarrier(ctx); err != nil {
		return managed.KVEntry{}, err
	}
	ev, err := k.n.Store().Get(key, recursive, true, time.Now())
	if err != nil {
		return managed.KVEntry{}, certKVError(err)
	}
	return certKVEntry(ev.Node), nil
}

func (k certKV) Set(ctx context.Context, key, value string) error {
	_, err := k.propose(ctx, &store.Request{Method: store.MethodPut, Path: key, Value: value})
	return err
}

func (k certKV) Create(ctx context.Context, key, value string, ttl time.Duration) (uint64, error) {
	r := &store.Request{Method: store.MethodPut, Path: key, Value: value, PrevExist: store.PrevExistFalse}
	setCertTTL(r, ttl)
	ev, err := k.propose(ctx, r)
	if err != nil {
		return 0, err
	}
	return ev.Node.CreatedIndex, nil
}

func (k certKV) Refresh(ctx context.Context, key, value string, ttl time.Duration) error {
	r := &store.Request{Method: store.MethodPut, Path: key, PrevExist: store.PrevExistTrue, PrevValue: value, Refresh: true}
	setCertTTL(r, ttl)
	_, err := k.propose(ctx, r)
	return err
}

func (k certKV) Swap(ctx context.Context, key, old, value string) error {
	_, err := k.propose(ctx, &store.Request{Method: store.MethodPut, Path: key, Value: value, PrevExist: store.PrevExistTrue, PrevValue: old})
	return err
}

func (k certKV) Delete(ctx context.Context, key, value string) error {
	r := &store.Request{Method: store.MethodDelete, Path: key, PrevValue: value}
	if value == "" {
		r.Recursive = true
	}
	_, err := k.propose(ctx, r)
	return err
}

func (k certKV) propose(ctx context.Context, r *store.Request) (*store.Event, error) {
	ev, err := k.n.Propose(ctx, r)
	if err != nil {
		return nil, certKVError(err)
	}
	if ev == nil || ev.Node == nil {
		return nil, fmt.Errorf("cluster: no result for %s %s", r.Method, r.Path)
	}
	return ev, nil
}

// setCertTTL sets r's TTL to ttl rounded up to whole seconds; ttl <= 0 leaves
// the key permanent.
func setCertTTL(r *store.Request, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	r.HasTTL = true
	r.TTL = uint64((ttl + time.Second - 1) / time.Second)
}

// certKVError maps the store's business failures to tlsauth's KV outcomes.
func certKVError(err error) error {
	var se *store.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.ErrorCode {
	case store.EcodeKeyNotFound:
		return fmt.Errorf("%w: %v", managed.ErrKVNotFound, err)
	case store.EcodeNodeExist:
		return fmt.Errorf("%w: %v", managed.ErrKVExists, err)
	case store.EcodeTestFailed:
		return fmt.Errorf("%w: %v", managed.ErrKVCompareFailed, err)
	}
	return err
}

func certKVEntry(n *store.NodeExtern) managed.KVEntry {
	e := managed.KVEntry{Key: n.Key, Dir: n.Dir, CreatedIndex: n.CreatedIndex, ModifiedIndex: n.ModifiedIndex}
	if n.Value != nil {
		e.Value = *n.Value
	}
	for _, c := range n.Nodes {
		e.Nodes = append(e.Nodes, certKVEntry(c))
	}
	return e
}
