package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// watch reports the changes of the watch w, one by one, to handle until
// handle says stop, ctx ends (an interrupt: no error, as etcdctl exits 0)
// or an error ends it. The client moves a watch whose connection fails to
// the next endpoint, from the same index, and gives up when every endpoint
// failed in a row. An event index that left the member's history (etcd
// error 401) resumes the watch from the member's current index, with a
// warning: the changes in between are lost (etcdctl would stop).
func (k *kvCmd) watch(ctx context.Context, w *v2client.Watcher, handle func(*store.Event) (stop bool, err error)) error {
	defer w.Close()
	for {
		ev, err := w.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var se *store.Error
		if errors.As(err, &se) && se.ErrorCode == store.EcodeEventIndexCleared {
			from, now := w.WaitIndex(), se.Index
			if now+1 <= from {
				return kvError(err)
			}
			fmt.Fprintf(k.stderr, "Warning: the changes from index %d on have left the history of %s (%s); changes up to index %d are lost: watching from index %d\n",
				from, w.Endpoint(), se.Cause, now, now+1)
			w.Resume(now)
			continue
		}
		if err != nil {
			return kvError(err)
		}
		stop, err := handle(ev)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil || stop {
			return err
		}
	}
}

// watcher is the watch of key the flags of cmd ask for.
func watcher(c *v2client.Client, cmd *cobra.Command, key string) (*v2client.Watcher, bool) {
	var o v2client.WatchOptions
	o.Recursive, _ = cmd.Flags().GetBool("recursive")
	o.AfterIndex, _ = cmd.Flags().GetUint64("after-index")
	return c.Watch(key, o), o.Recursive
}

// watchCmd is `watch`: it prints the first change of a file (with
// --recursive, preceded by "[action] key"), or every one with --forever.
// Changes to directories are skipped.
func (k *kvCmd) watchCmd(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	w, recursive := watcher(c, cmd, key)
	forever, _ := cmd.Flags().GetBool("forever")
	return k.watch(ctx, w, func(ev *store.Event) (bool, error) {
		if ev.Node.Dir {
			return false, nil
		}
		if recursive {
			if _, err := fmt.Fprintf(k.stdout, "[%s] %s\n", ev.Action, ev.Node.Key); err != nil {
				return true, err
			}
		}
		return !forever, printResponse(k.stdout, ev, k.output)
	})
}

// execWatch is `exec-watch`: it runs the command for each change of a
// file, with the change in ETCD_WATCH_* variables, one run at a time.
func (k *kvCmd) execWatch(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) < 2 {
		return errors.New("key and command to exec required")
	}
	w, _ := watcher(c, cmd, args[0])
	return k.watch(ctx, w, func(ev *store.Event) (bool, error) {
		if ev.Node.Dir {
			fmt.Fprintf(k.stderr, "Ignored dir %s change\n", ev.Node.Key)
			return false, nil
		}
		value := ""
		if ev.Node.Value != nil {
			value = *ev.Node.Value
		}
		run := exec.CommandContext(ctx, args[1], args[2:]...)
		run.Env = append(append([]string(nil), k.environ...),
			"ETCD_WATCH_ACTION="+ev.Action,
			"ETCD_WATCH_MODIFIED_INDEX="+strconv.FormatUint(ev.Node.ModifiedIndex, 10),
			"ETCD_WATCH_KEY="+ev.Node.Key,
			"ETCD_WATCH_VALUE="+value)
		run.Stdout, run.Stderr = k.stdout, k.stderr
		// An interrupt reaches the command as one, and ends the watch once
		// the command has ended.
		run.Cancel = func() error { return run.Process.Signal(os.Interrupt) }
		run.WaitDelay = 10 * time.Second
		if err := run.Start(); err != nil {
			return true, err
		}
		// The command's own failure is its business (etcdctl ignores it
		// too); its stderr says why.
		_ = run.Wait()
		return false, nil
	})
}
