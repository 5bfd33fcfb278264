package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
)

func (k *kvCmd) setKey(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string, o v2client.SetOptions) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	value, err := valueArg(cmd, args)
	if err != nil {
		return err
	}
	ev, err := c.Set(ctx, key, value, o)
	if err != nil {
		return kvError(err)
	}
	return printResponse(k.stdout, ev, k.output)
}

// setDir is mkdir, setdir and updatedir: nothing is printed in the simple
// format.
func (k *kvCmd) setDir(ctx context.Context, c *v2client.Client, args []string, o v2client.SetOptions) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	o.Dir = true
	ev, err := c.Set(ctx, key, "", o)
	if err != nil {
		return kvError(err)
	}
	if k.output == outputSimple {
		return nil
	}
	return printResponse(k.stdout, ev, k.output)
}

// mkInOrder is `mk --in-order`: a POST that creates a key named by its
// index under the directory.
func (k *kvCmd) mkInOrder(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string, ttl time.Duration) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	value, err := valueArg(cmd, args)
	if err != nil {
		return err
	}
	ev, err := c.CreateInOrder(ctx, key, value, ttl)
	if err != nil {
		return kvError(err)
	}
	return printResponse(k.stdout, ev, k.output)
}

func (k *kvCmd) rm(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
	var o v2client.DeleteOptions
	o.PrevValue, _ = cmd.Flags().GetString("with-value")
	o.PrevIndex, _ = cmd.Flags().GetUint64("with-index")
	o.Dir, _ = cmd.Flags().GetBool("dir")
	o.Recursive, _ = cmd.Flags().GetBool("recursive")
	return k.remove(ctx, c, args, o)
}

// remove is rm and rmdir: a removed directory is not printed in the simple
// format.
func (k *kvCmd) remove(ctx context.Context, c *v2client.Client, args []string, o v2client.DeleteOptions) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	ev, err := c.Delete(ctx, key, o)
	if err != nil {
		return kvError(err)
	}
	if ev.Node.Dir && k.output == outputSimple {
		return nil
	}
	return printResponse(k.stdout, ev, k.output)
}
