package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// streamEvent is a watch event of the stream. These tests read the stream
// raw, not through v2client's Watcher, which would reconnect when the
// server ends a stream: the server's stream is what they check.
type streamEvent = store.Event

// value is an event's value.
func value(ev streamEvent) string {
	if ev.Node == nil || ev.Node.Value == nil {
		return ""
	}
	return *ev.Node.Value
}

// openStream starts GET path?wait=true&stream=true&<query> and returns a
// channel of decoded events, closed when the stream ends.
func openStream(t *testing.T, s *Server, path, query string) <-chan streamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	u := s.URL + path + "?wait=true&stream=true"
	if query != "" {
		u += "&" + query
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	ch := make(chan streamEvent)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev streamEvent
			if err := dec.Decode(&ev); err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// nextEvent waits up to five seconds for the next event of ch.
func nextEvent(t *testing.T, ch <-chan streamEvent, want string) streamEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("the stream ended; want %s", want)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no event within 5 s; want %s", want)
	}
	return streamEvent{Node: &store.NodeExtern{}}
}

func putValue(t *testing.T, s *Server, key, value string) uint64 {
	t.Helper()
	ev, err := s.SetKey(t, key, value)
	if err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
	return ev.EtcdIndex
}

// TestStreamLive: a stream=true watch without waitIndex delivers every
// later event, each as its own JSON object. Run against etcd too, which
// validates the test.
func TestStreamLive(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindEtcd, KindCairn} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var s *Server
			if kind == KindEtcd {
				s = StartEtcd(t, testPKI, "stream")
			} else {
				s = startCairn(t)
			}
			base := putValue(t, s, "/stream/k", "v0")
			// waitIndex pins the start so that nothing is missed if the
			// writes below overtake the registration; all events are after
			// the current index, so none comes from history.
			ch := openStream(t, s, "/v2/keys/stream", "recursive=true&waitIndex="+strconv.FormatUint(base+1, 10))
			for i := 1; i <= 3; i++ {
				idx := putValue(t, s, "/stream/k", fmt.Sprintf("v%d", i))
				ev := nextEvent(t, ch, fmt.Sprintf("the set at %d", idx))
				if ev.Node.ModifiedIndex != idx || value(ev) != fmt.Sprintf("v%d", i) {
					t.Errorf("event %d: %+v; want the set of v%d at %d", i, ev, i, idx)
				}
			}
		})
	}
}

// TestStreamFromHistory: a stream=true watch whose waitIndex is in the
// past must deliver every matching event from history, in order, and then
// the live ones. etcd 0.4/2.x/3.x deliver the first historic event and
// then nothing, because the watcher is never registered in the hub
// (reference §1.3 item 6); Cairn fixes that, so this runs on cairn only.
func TestStreamFromHistory(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	first := putValue(t, s, "/hstream/k", "h1")
	second := putValue(t, s, "/hstream/k", "h2")
	putValue(t, s, "/hstream/other", "x") // does not match
	third := putValue(t, s, "/hstream/k", "h3")

	ch := openStream(t, s, "/v2/keys/hstream/k", "waitIndex="+strconv.FormatUint(first, 10))
	for _, want := range []struct {
		idx   uint64
		value string
	}{{first, "h1"}, {second, "h2"}, {third, "h3"}} {
		ev := nextEvent(t, ch, fmt.Sprintf("the historic set of %s at %d", want.value, want.idx))
		if ev.Node.ModifiedIndex != want.idx || value(ev) != want.value {
			t.Fatalf("got %+v; want the historic set of %s at %d", ev, want.value, want.idx)
		}
	}
	live := putValue(t, s, "/hstream/k", "h4")
	if ev := nextEvent(t, ch, "the live set of h4"); ev.Node.ModifiedIndex != live || value(ev) != "h4" {
		t.Errorf("got %+v; want the live set of h4 at %d", ev, live)
	}
}
