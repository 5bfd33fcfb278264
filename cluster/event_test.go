package cluster

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/store"
)

// TestEventEncodingCoversFields fails when store.Event or store.NodeExtern
// gains a field: event.go must carry it (or fall back to JSON for it).
func TestEventEncodingCoversFields(t *testing.T) {
	if n := reflect.TypeOf(store.Event{}).NumField(); n != 5 {
		t.Errorf("store.Event has %d fields, event.go encodes 5: carry the new one", n)
	}
	if n := reflect.TypeOf(store.NodeExtern{}).NumField(); n != 8 {
		t.Errorf("store.NodeExtern has %d fields, event.go encodes 8 (Nodes by falling back to JSON): carry the new one", n)
	}
}

// TestProposeAnswerRoundTrip: an event comes back from the leader's answer
// as it went in, in both encodings, and the JSON a client sees is the same.
func TestProposeAnswerRoundTrip(t *testing.T) {
	v, empty := "value", ""
	exp := time.Date(2026, 12, 7, 1, 2, 3, 456, time.FixedZone("", 3600))
	child := &store.NodeExtern{Key: "/d/c", Value: &v, ModifiedIndex: 3, CreatedIndex: 3}
	for _, ev := range []*store.Event{
		{Action: store.ActionSet, EtcdIndex: 9, Node: &store.NodeExtern{Key: "/a", Value: &v, ModifiedIndex: 9, CreatedIndex: 9}},
		{Action: store.ActionCompareAndSwap, EtcdIndex: 10, Refresh: true,
			Node:     &store.NodeExtern{Key: "/a", Value: &empty, Expiration: &exp, TTL: 30, ModifiedIndex: 10, CreatedIndex: 9},
			PrevNode: &store.NodeExtern{Key: "/a", Value: &v, ModifiedIndex: 9, CreatedIndex: 9}},
		{Action: store.ActionDelete, EtcdIndex: 11, Node: &store.NodeExtern{Key: "/d", Dir: true, ModifiedIndex: 11, CreatedIndex: 2},
			PrevNode: &store.NodeExtern{Key: "/d", Dir: true, ModifiedIndex: 2, CreatedIndex: 2}},
		{Action: store.ActionGet, EtcdIndex: 12, Node: &store.NodeExtern{Key: "/d", Dir: true, Nodes: store.NodeExterns{child}}}, // JSON fallback
		{Action: store.ActionExpire, EtcdIndex: 13},
	} {
		for _, bin := range []bool{true, false} {
			ans, err := encodeProposeAnswer(ev, 77, bin)
			if err != nil {
				t.Fatal(err)
			}
			got, idx, err := decodeProposeAnswer(ans)
			if err != nil || idx != 77 {
				t.Fatalf("%s (binary %v): index %d, %v", ev.Action, bin, idx, err)
			}
			want, _ := json.Marshal(ev)
			have, _ := json.Marshal(got)
			if string(want) != string(have) || got.EtcdIndex != ev.EtcdIndex || got.Refresh != ev.Refresh {
				t.Errorf("%s (binary %v):\n got %s (index %d refresh %v)\nwant %s (index %d refresh %v)", ev.Action, bin,
					have, got.EtcdIndex, got.Refresh, want, ev.EtcdIndex, ev.Refresh)
			}
		}
	}
	// Truncations are errors, never panics.
	ans, _ := encodeProposeAnswer(&store.Event{Action: "set", Node: &store.NodeExtern{Key: "/a", Value: &v, Expiration: &exp}}, 1, true)
	for i := 1; i < len(ans); i++ {
		if _, _, err := decodeProposeAnswer(ans[:i]); err == nil {
			t.Fatalf("an answer cut to %d of %d bytes decoded", i, len(ans))
		}
	}
}

// TestForwardedProposeErrorAmbiguous: a leader whose raft shut down under a
// forwarded proposal does not tell the follower that nothing was proposed
// (ErrNotLeader marks a write a client may send elsewhere).
func TestForwardedProposeErrorAmbiguous(t *testing.T) {
	_, err := decodeAnswer(encodeFailure(forwardedProposeError(raftError(raft.ErrRaftShutdown))))
	if errors.Is(err, ErrNotLeader) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("raft shut down under a forwarded proposal answers %v; want ErrTimeout, not ErrNotLeader", err)
	}
	_, err = decodeAnswer(encodeFailure(forwardedProposeError(raftError(raft.ErrNotLeader))))
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a proposal raft refused as not leader answers %v; want ErrNotLeader", err)
	}
}
