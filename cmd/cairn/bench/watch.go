package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// watchLoad measures event delivery: Clients watchers long-poll one key
// (spread over the members), and one writer sets it, one write at a time:
// each write waits until every watcher has its event, so the latency is
// delivery, not queueing. The value of a write is its sequence number and
// the time it was sent; a watcher's latency is the time from that send to
// the event's arrival.
type watchLoad struct {
	cfg    Config
	conn   *conn
	writes atomic.Uint64
}

// deliveryTimeout bounds the wait for every watcher to see one write.
const deliveryTimeout = 10 * time.Second

func (l *watchLoad) close()                                 { l.conn.close() }
func (l *watchLoad) setup(context.Context, *Progress) error { return nil }

func (l *watchLoad) run(ctx context.Context, c *counters) (*tally, time.Duration, error) {
	key := "/v2/keys" + l.cfg.Prefix + "/watch"
	base := time.Now()
	send := func(seq uint64) (uint64, error) {
		form := []byte("value=" + strconv.FormatUint(seq, 10) + ":" + strconv.FormatInt(int64(time.Since(base)), 10))
		return l.conn.do(ctx, l.conn.hc, http.MethodPut, l.conn.endpoint()+key, form, nil, http.StatusOK, http.StatusCreated)
	}
	idx, err := send(0)
	if err != nil {
		return nil, 0, fmt.Errorf("bench: watch: the first write: %w", err)
	}

	wctx, cancel := context.WithCancel(ctx)
	acks := make(chan uint64, l.cfg.Clients)
	tallies := make([]tally, l.cfg.Clients)
	var measuring atomic.Bool
	var wg sync.WaitGroup
	for i := range l.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.watch(wctx, l.conn.endpoint()+key, idx, base, &tallies[i], &measuring, acks, c)
		}()
	}
	stop := func() { cancel(); wg.Wait() }

	// The first write, made before the watchers, warms their
	// connections: it is waited for, not measured.
	if err := waitAcks(ctx, acks, 0, l.cfg.Clients, 3*deliveryTimeout); err != nil {
		stop()
		return nil, 0, fmt.Errorf("bench: watch: the watchers did not all see the first write: %w", err)
	}
	measuring.Store(true)
	r, release := startRun(ctx, l.cfg)
	defer release()
	wt := &tally{}
	start := time.Now()
	for {
		n, ok := r.next()
		if !ok {
			break
		}
		seq := n + 1
		if _, err := send(seq); err != nil {
			if ctx.Err() != nil {
				break
			}
			wt.fail(err)
			c.errs.Add(1)
			continue
		}
		l.writes.Add(1)
		if err := waitAcks(ctx, acks, seq, l.cfg.Clients, deliveryTimeout); err != nil {
			if ctx.Err() != nil {
				break
			}
			wt.fail(err)
			c.errs.Add(1)
		}
	}
	elapsed := time.Since(start)
	stop()
	for i := range tallies {
		wt.merge(&tallies[i])
	}
	return wt, elapsed, nil
}

// waitAcks waits for n acknowledgements of seq (older ones are dropped).
func waitAcks(ctx context.Context, acks <-chan uint64, seq uint64, n int, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for got := 0; got < n; {
		select {
		case s := <-acks:
			if s == seq {
				got++
			}
		case <-t.C:
			return fmt.Errorf("%d of %d watchers saw write %d within %v", got, n, seq, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// watch long-polls url from index on, recording each event's latency once
// measuring, and acknowledging each event's sequence number.
func (l *watchLoad) watch(ctx context.Context, url string, index uint64, base time.Time, t *tally, measuring *atomic.Bool, acks chan<- uint64, c *counters) {
	var body bytes.Buffer
	var ev struct {
		Node struct {
			Value         string `json:"value"`
			ModifiedIndex uint64 `json:"modifiedIndex"`
		} `json:"node"`
	}
	for ctx.Err() == nil {
		_, err := l.conn.do(ctx, l.conn.long, http.MethodGet, url+"?wait=true&waitIndex="+strconv.FormatUint(index, 10), nil, &body, http.StatusOK)
		if err == nil {
			err = json.Unmarshal(body.Bytes(), &ev)
		}
		if err != nil {
			if ctx.Err() == nil {
				t.fail(err)
				c.errs.Add(1)
			}
			select { // a member that fails at once is not asked in a hot loop
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		now := time.Since(base)
		index = ev.Node.ModifiedIndex + 1
		s, ns, _ := strings.Cut(ev.Node.Value, ":")
		seq, err1 := strconv.ParseUint(s, 10, 64)
		sent, err2 := strconv.ParseInt(ns, 10, 64)
		if err1 != nil || err2 != nil {
			continue // a write of someone else's
		}
		if measuring.Load() && seq > 0 {
			t.hist.Record(now - time.Duration(sent))
			c.ok.Add(1)
		}
		select {
		case acks <- seq:
		case <-ctx.Done():
		}
	}
}
