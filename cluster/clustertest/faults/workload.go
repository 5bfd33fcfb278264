//go:build linux

package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// worker issues operations through its own client, aimed at one member,
// until stop is closed, recording each in h.
type worker struct {
	id     int
	node   string
	c      *v2client.Client
	h      *History
	rng    *rand.Rand
	keys   []string
	stale  bool          // read with stale=true: a broken read path
	budget time.Duration // one operation's deadline
	seq    int
	client int
	seen   map[string]seenValue // per key: the last value this worker saw, and its index
}

type seenValue struct {
	value string
	index uint64
}

// run loops until stop is closed; an operation in flight then finishes
// (or times out) first, so that its outcome is known where it can be.
func (w *worker) run(stop <-chan struct{}) {
	w.client = w.h.NewClient()
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	<-backoff.C
	for {
		select {
		case <-stop:
			return
		default:
		}
		in := w.next()
		call := w.h.Now()
		out, sent := w.do(in)
		if !sent {
			// The member is down (killed, restarting): wait a little
			// rather than spin on refused dials.
			w.h.Refused()
			backoff.Reset(50 * time.Millisecond)
			select {
			case <-stop:
				return
			case <-backoff.C:
			}
			continue
		}
		w.h.Add(Op{Client: w.client, Worker: w.id, Node: w.node, In: in, Out: out, Call: call, Return: w.h.Now()})
		switch {
		case out.Result == Unknown:
			// The request may still be in flight: go on as a new client.
			w.client = w.h.NewClient()
		case out.Result == OK && in.Kind == Read:
			w.seen[in.Key] = seenValue{out.Value, out.Index}
		case out.Result == OK:
			w.seen[in.Key] = seenValue{in.Value, out.Index}
		}
	}
}

// next picks an operation: 40% reads, 30% writes, 30% CAS (half on
// prevValue, half on prevIndex) on a value this worker saw last.
func (w *worker) next() Input {
	key := w.keys[w.rng.IntN(len(w.keys))]
	r := w.rng.IntN(10)
	if r < 4 {
		return Input{Kind: Read, Key: key}
	}
	w.seq++
	value := fmt.Sprintf("w%d.%d", w.id, w.seq)
	s, ok := w.seen[key]
	if r < 7 || !ok {
		return Input{Kind: Write, Key: key, Value: value}
	}
	in := Input{Kind: CAS, Key: key, Value: value, Expect: s.value}
	if r%2 == 0 {
		in.ExpectIndex = s.index
	}
	return in
}

// do sends in and classifies the answer; sent is false when the request
// never left the client.
func (w *worker) do(in Input) (out Output, sent bool) {
	ctx, cancel := context.WithTimeout(context.Background(), w.budget)
	defer cancel()
	var (
		ev  *store.Event
		err error
	)
	switch in.Kind {
	case Read:
		ev, err = w.c.Get(ctx, in.Key, v2client.GetOptions{Stale: w.stale})
	case Write:
		ev, err = w.c.Set(ctx, in.Key, in.Value, v2client.SetOptions{})
	case CAS:
		o := v2client.SetOptions{PrevValue: in.Expect}
		if in.ExpectIndex != 0 {
			o = v2client.SetOptions{PrevIndex: in.ExpectIndex}
		}
		ev, err = w.c.Set(ctx, in.Key, in.Value, o)
	}
	return classify(in, ev, err)
}

// classify turns an answer into an Output. Only a success and the etcd
// errors 100 and 101 are definite; anything else (a timeout, a reset,
// a 5xx) is Unknown, but for a dial that failed or an answer marked as
// not applied: then nothing was done, and sent is false.
func classify(in Input, ev *store.Event, err error) (Output, bool) {
	if err == nil {
		if ev.Node == nil || ev.Node.Value == nil {
			return Output{Result: Unknown, Err: "answer without a value"}, true
		}
		out := Output{Result: OK, Index: ev.Node.ModifiedIndex}
		if in.Kind == Read {
			out.Value = *ev.Node.Value
		}
		return out, true
	}
	var se *store.Error
	if errors.As(err, &se) {
		switch {
		case se.ErrorCode == store.EcodeKeyNotFound && in.Kind != Write:
			return Output{Result: NotFound}, true
		case se.ErrorCode == store.EcodeTestFailed && in.Kind == CAS:
			return Output{Result: TestFailed}, true
		}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" || errors.Is(err, v2client.ErrNotApplied) {
		// A refused dial, or a member's answer that it proposed nothing
		// (no leader heard from: a member cut off by a partition answers
		// so at once, many times a second).
		return Output{}, false
	}
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return Output{Result: Unknown, Err: msg}, true
}
