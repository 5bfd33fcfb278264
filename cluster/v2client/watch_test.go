package v2client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

func TestWatch(t *testing.T) {
	p := newPKI(t)
	_, url := node(t, p)
	c := newClient(t, p, 2*time.Second, url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := c.Set(ctx, fmt.Sprintf("/w/k%d", i), fmt.Sprint(i), v2client.SetOptions{}); err != nil { // 1..3
			t.Fatal(err)
		}
	}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			w := c.Watch("/w", v2client.WatchOptions{AfterIndex: 1, Recursive: true, Stream: stream})
			defer w.Close()
			// From history, then live, every change once.
			for i, want := range []string{"1", "2"} {
				ev, err := w.Next(ctx)
				if err != nil || *ev.Node.Value != want || ev.Node.ModifiedIndex != uint64(i+2) {
					t.Fatalf("change %d: %+v, %v", i, ev, err)
				}
			}
			live := make(chan error, 1)
			go func() {
				ev, err := w.Next(ctx)
				if err == nil && *ev.Node.Value != "live" {
					err = fmt.Errorf("got %s", *ev.Node.Value)
				}
				live <- err
			}()
			if _, err := c.Set(ctx, "/w/k0", "live", v2client.SetOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := <-live; err != nil {
				t.Fatalf("live change: %v", err)
			}
			if w.Endpoint() != url {
				t.Errorf("endpoint %q", w.Endpoint())
			}
		})
	}

	t.Run("ends with ctx", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		w := c.Watch("/quiet", v2client.WatchOptions{})
		go func() { time.AfterFunc(50*time.Millisecond, wcancel) }()
		if _, err := w.Next(wctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next: %v", err)
		}
	})
}

// TestWatchResume: a watch moves past each change it reports, and Resume
// moves it further (what a caller does after error 401).
func TestWatchResume(t *testing.T) {
	p := newPKI(t)
	_, url := node(t, p)
	c := newClient(t, p, 2*time.Second, url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last *store.Event
	for i := range 3 {
		ev, err := c.Set(ctx, "/h", fmt.Sprint(i), v2client.SetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	w := c.Watch("/h", v2client.WatchOptions{AfterIndex: last.EtcdIndex - 1})
	ev, err := w.Next(ctx)
	if err != nil || *ev.Node.Value != "2" {
		t.Fatalf("Next: %+v, %v", ev, err)
	}
	// Resume skips ahead.
	w.Resume(last.EtcdIndex + 5)
	go func() {
		for i := range 7 {
			if _, err := c.Set(ctx, "/h", fmt.Sprint("r", i), v2client.SetOptions{}); err != nil {
				return
			}
		}
	}()
	ev, err = w.Next(ctx)
	if err != nil || ev.Node.ModifiedIndex != last.EtcdIndex+6 {
		t.Fatalf("after Resume: %+v, %v", ev, err)
	}
}
