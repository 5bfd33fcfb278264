package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairnkv/cairn/store"
)

// Forwarded requests: [op][hops][payload]. Answers: [status][payload].
// The high bit of hops (flagBinaryEvent) asks for a proposal's event in
// the binary encoding (event.go); a member that predates it ignores it as
// leader and answers JSON.
const (
	opPropose        byte = 1 // payload: an encoded cmdRequest; answer: uvarint raft index, wireEvent
	opReadIndex      byte = 2 // answer: uvarint index the reader must have applied
	opJoin           byte = 3 // payload: joinRequest JSON
	opAddMember      byte = 4 // payload: JSON []string peer URLs; answer: Member JSON
	opRemoveMember   byte = 5 // payload: uvarint id
	opUpdateMember   byte = 6 // payload: memberUpdate JSON
	opPing           byte = 7 // answer: empty
	opAddedMember    byte = 8 // payload: a peer address; answer: uvarint ID of the unstarted member there, 0 for none
	opTransferLeader byte = 9 // payload: uvarint ID of the member to hand the leadership to, 0 for raft's choice; answer: uvarint ID of the new leader
)

const (
	flagBinaryEvent byte = 0x80
	hopsMask        byte = 0x7f
)

const (
	statusOK       byte = 0
	statusStoreErr byte = 1 // payload: store.Error JSON
	statusFailure  byte = 2 // payload: failure kind, then text
)

// Failure kinds: the sentinel errors that cross the wire.
const (
	failOther byte = iota
	failNotLeader
	failTimeout
	failStopped
	failUninitialized
	failMember // then a uvarint HTTP status
	failStarting
)

// ErrUninitialized is a peer's answer while it is not part of any cluster
// yet (an empty data dir waiting to join or to bootstrap).
var ErrUninitialized = errors.New("cluster: member is not part of a cluster yet")

// wireEvent carries an event's fields that its JSON form leaves out.
type wireEvent struct {
	Event     *store.Event `json:"e"`
	EtcdIndex uint64       `json:"i"`
	Refresh   bool         `json:"r,omitempty"`
}

// encodeProposeAnswer is the leader's answer to a forwarded proposal: the
// raft index of the entry, then the event, in the binary encoding when
// binary (and the event has one, see appendEvent), else as JSON.
func encodeProposeAnswer(ev *store.Event, idx uint64, binary_ bool) ([]byte, error) {
	b := binary.AppendUvarint(make([]byte, 0, 64+eventSizeHint(ev)), idx)
	if binary_ {
		if out, ok := appendEvent(b, ev); ok {
			return out, nil
		}
	}
	j, err := json.Marshal(wireEvent{Event: ev, EtcdIndex: ev.EtcdIndex, Refresh: ev.Refresh})
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// decodeProposeAnswer parses encodeProposeAnswer's answer, in either
// encoding: JSON starts with '{', the binary encoding with its version.
func decodeProposeAnswer(ans []byte) (*store.Event, uint64, error) {
	idx, k := binary.Uvarint(ans)
	if k <= 0 || k >= len(ans) {
		return nil, 0, errors.New("cluster: truncated proposal answer from the leader")
	}
	if ans[k] != '{' {
		ev, err := decodeEvent(ans[k:])
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: bad proposal answer from the leader: %w", err)
		}
		return ev, idx, nil
	}
	var we wireEvent
	if err := json.Unmarshal(ans[k:], &we); err != nil || we.Event == nil {
		return nil, 0, fmt.Errorf("cluster: bad proposal answer from the leader: %v", err)
	}
	we.Event.EtcdIndex, we.Event.Refresh = we.EtcdIndex, we.Refresh
	return we.Event, idx, nil
}

// remoteError is a failure answered by a peer that is not one of the
// sentinels: its text is shown as is.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return e.msg }

func encodeOK(payload []byte) []byte { return append([]byte{statusOK}, payload...) }

func encodeFailure(err error) []byte {
	var se *store.Error
	if errors.As(err, &se) {
		b, _ := json.Marshal(se)
		return append([]byte{statusStoreErr}, b...)
	}
	var me *MemberError
	kind := failOther
	var extra []byte
	switch {
	case errors.As(err, &me):
		kind = failMember
		extra = binary.AppendUvarint(nil, uint64(me.Status))
	case errors.Is(err, ErrNotLeader):
		kind = failNotLeader
	case errors.Is(err, ErrTimeout):
		kind = failTimeout
	case errors.Is(err, ErrStopped):
		kind = failStopped
	case errors.Is(err, ErrUninitialized):
		kind = failUninitialized
	case errors.Is(err, errNoHandler):
		kind = failStarting
	}
	b := append([]byte{statusFailure, kind}, extra...)
	return append(b, err.Error()...)
}

// decodeAnswer splits an answer into its payload or its error.
func decodeAnswer(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("cluster: empty answer from peer")
	}
	switch b[0] {
	case statusOK:
		return b[1:], nil
	case statusStoreErr:
		se := new(store.Error)
		if err := json.Unmarshal(b[1:], se); err != nil {
			return nil, fmt.Errorf("cluster: bad store error from peer: %w", err)
		}
		return nil, se
	case statusFailure:
		if len(b) < 2 {
			return nil, errors.New("cluster: truncated failure from peer")
		}
		kind, rest := b[1], b[2:]
		switch kind {
		case failNotLeader:
			return nil, fmt.Errorf("%w (leader: %s)", ErrNotLeader, rest)
		case failTimeout:
			return nil, ErrTimeout
		case failStopped:
			return nil, fmt.Errorf("cluster: leader is shutting down: %w", ErrNotLeader)
		case failUninitialized:
			return nil, ErrUninitialized
		case failStarting:
			return nil, fmt.Errorf("%w: %w", errNoHandler, ErrNotSent)
		case failMember:
			st, n := binary.Uvarint(rest)
			if n <= 0 {
				return nil, errors.New("cluster: truncated member error from peer")
			}
			return nil, &MemberError{Status: int(st), Msg: string(rest[n:])}
		}
		return nil, &remoteError{msg: string(rest)}
	}
	return nil, fmt.Errorf("cluster: unknown answer status %d from peer", b[0])
}

// handle answers a request from a peer. A request this node cannot serve
// because it is not the leader is passed on to the leader once (hops
// counts the passes), so a joining node may ask any member.
func (n *Node) handle(ctx context.Context, req []byte) []byte {
	if len(req) < 2 {
		return encodeFailure(errors.New("cluster: truncated request"))
	}
	op, hops, payload := req[0], req[1]&hopsMask, req[2:]
	flags := req[1] &^ hopsMask
	if op == opPing {
		return encodeOK(nil)
	}
	if !n.hasConfiguration() {
		return encodeFailure(ErrUninitialized)
	}
	if !n.isLeader() {
		if hops > 0 {
			return encodeFailure(ErrNotLeader)
		}
		ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
		defer cancel()
		ans, err := n.callLeader(ctx, op, 1|flags, payload)
		if err != nil {
			return encodeFailure(err)
		}
		return encodeOK(ans)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	ans, err := n.serveLeader(ctx, op, flags, payload)
	if err != nil {
		return encodeFailure(err)
	}
	return encodeOK(ans)
}

// forwardedProposeError is the error a leader answers a forwarded
// proposal with. ErrStopped crosses the wire as "the leader is shutting
// down", which the follower takes as nothing proposed (ErrNotLeader, and
// v2http's not-applied mark, after which a client sends even a write
// elsewhere). Raft shutting down under a pending entry is not that: the
// entry may be in the log and commit under the next leader, so it is
// answered as the ambiguous timeout.
func forwardedProposeError(err error) error {
	if errors.Is(err, ErrStopped) {
		return fmt.Errorf("%w: the leader shut down before the entry committed; it may or may not be applied", ErrTimeout)
	}
	return err
}

// serveLeader runs a forwarded request on the leader; flags are the
// request's (flagBinaryEvent).
func (n *Node) serveLeader(ctx context.Context, op, flags byte, payload []byte) ([]byte, error) {
	switch op {
	case opPropose:
		c, err := decodeCommand(payload)
		if err != nil || c.typ != cmdRequest {
			return nil, fmt.Errorf("cluster: bad forwarded proposal: %v", err)
		}
		ev, idx, err := n.proposeWrite(ctx, c.req)
		if err != nil {
			return nil, forwardedProposeError(err)
		}
		return encodeProposeAnswer(ev, idx, flags&flagBinaryEvent != 0)
	case opReadIndex:
		idx, err := n.readIndex(ctx)
		if err != nil {
			return nil, err
		}
		return binary.AppendUvarint(nil, idx), nil
	case opJoin:
		var jr joinRequest
		if err := json.Unmarshal(payload, &jr); err != nil {
			return nil, fmt.Errorf("cluster: bad join request: %w", err)
		}
		return nil, n.admitMember(ctx, jr)
	case opAddMember:
		var urls []string
		if err := json.Unmarshal(payload, &urls); err != nil {
			return nil, fmt.Errorf("cluster: bad add-member request: %w", err)
		}
		m, err := n.addMemberLocal(ctx, urls)
		if err != nil {
			return nil, err
		}
		return json.Marshal(m)
	case opRemoveMember:
		id, k := binary.Uvarint(payload)
		if k <= 0 {
			return nil, errors.New("cluster: bad remove-member request")
		}
		return nil, n.removeMemberLocal(ctx, id)
	case opAddedMember:
		return binary.AppendUvarint(nil, n.addedMemberAt(string(payload))), nil
	case opTransferLeader:
		to, k := binary.Uvarint(payload)
		if k <= 0 {
			return nil, errors.New("cluster: bad transfer-leader request")
		}
		id, err := n.transferLocal(ctx, to)
		if err != nil {
			return nil, err
		}
		return binary.AppendUvarint(nil, id), nil
	case opUpdateMember:
		var u memberUpdate
		if err := json.Unmarshal(payload, &u); err != nil {
			return nil, fmt.Errorf("cluster: bad update-member request: %w", err)
		}
		return nil, n.updateMemberLocal(ctx, u.ID, u.PeerURLs)
	}
	return nil, fmt.Errorf("cluster: unknown request %d from peer", op)
}

// idempotent reports whether a forwarded op changes nothing on the
// leader, so that one whose answer was lost may be sent again.
func idempotent(op byte) bool { return op == opReadIndex || op == opPing }

// callLeader sends a request to the current leader, waiting (within ctx)
// for one to be known. It retries while the request provably did not reach
// a leader: no leader known, a connection that could not be made, or a
// peer that was no longer leader when it checked; and, for a request
// that changes nothing, a connection lost before the answer came.
func (n *Node) callLeader(ctx context.Context, op, hops byte, payload []byte) ([]byte, error) {
	req := append([]byte{op, hops}, payload...)
	backoff := 10 * time.Millisecond
	var last error = ErrNotLeader
	// A member cut off from the others reaches no leader: after three
	// election timeouts of trying it refuses (nothing was proposed, so a
	// client may send it elsewhere) rather than hold the request for the
	// whole request timeout.
	giveUp := time.Now().Add(3 * n.cfg.ElectionTimeout)
	for {
		addr, _ := n.raft.LeaderWithID()
		// etcd's "no leader": a member that has heard from no leader for
		// longer than the election timeout (cut off, or its leader died
		// and no other is elected yet) refuses at once, so that clients
		// move to another member instead of waiting here. The silence
		// counts whether or not raft still names the leader it last heard
		// from (a follower's own timer may run up to twice the timeout
		// before it campaigns and forgets it).
		noLeaderAt, follower := n.noLeaderDeadline()
		if follower && time.Now().After(noLeaderAt) {
			return nil, fmt.Errorf("%w: no leader heard from for over %v (is this member cut off from the others?)", ErrNotLeader, n.cfg.ElectionTimeout)
		}
		if n.isLeader() {
			// ErrNotLeader here proposed nothing: leadership is being
			// handed over, or was just lost. The next leader serves it.
			ans, err := n.serveLeader(ctx, op, hops&^hopsMask, payload)
			if !errors.Is(err, ErrNotLeader) {
				return ans, err
			}
			last = err
		} else if addr != "" {
			ans, err := n.net.Call(ctx, string(addr), req)
			lost := false
			if err == nil {
				ans, err = decodeAnswer(ans)
			} else {
				// The connection failed after the request left: the leader
				// may have served it. Asking again is harmless for a
				// request that changes nothing (a read index taken later
				// still covers every write acknowledged before the read).
				lost = idempotent(op) && ctx.Err() == nil
			}
			if err == nil || !(lost || errors.Is(err, ErrNotSent) || errors.Is(err, ErrNotLeader)) {
				return ans, err
			}
			last = err
		}
		if (errors.Is(last, ErrNotLeader) || errors.Is(last, ErrNotSent)) && time.Now().After(giveUp) {
			return nil, fmt.Errorf("%w: no leader reached for %v (is this member cut off from the others?)", ErrNotLeader, 3*n.cfg.ElectionTimeout)
		}
		// Wake at the no-leader deadline, not up to a backoff after it.
		wait := backoff
		if d := time.Until(noLeaderAt) + time.Millisecond; follower && d > 0 && d < wait {
			wait = d
		}
		select {
		case <-ctx.Done():
			if errors.Is(last, ErrNotLeader) {
				return nil, fmt.Errorf("%w: no leader answered within the request timeout (is a majority of members up and reachable?)", ErrNotLeader)
			}
			return nil, fmt.Errorf("%w: %w", ErrTimeout, last)
		case <-n.stop:
			return nil, ErrStopped
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// noLeaderDeadline is when a follower's silence from any leader has gone
// on too long: the election timeout after the last message of a leader.
// A member that has heard from none since it started (LastContact is zero
// until then), or since it stopped leading, is waiting for an election,
// which raft's randomized timer starts only between one and two election
// timeouts in: it gets three. follower is false on the leader, which the
// deadline does not concern.
func (n *Node) noLeaderDeadline() (at time.Time, follower bool) {
	if n.isLeader() {
		return time.Time{}, false
	}
	heard, since := n.raft.LastContact().UnixNano(), n.leaderLost.Load()
	if heard > since {
		return time.Unix(0, heard).Add(n.cfg.ElectionTimeout), true
	}
	return time.Unix(0, since).Add(3 * n.cfg.ElectionTimeout), true
}
