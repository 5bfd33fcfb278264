package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// getOptions are the read flags of get and ls.
func getOptions(cmd *cobra.Command) v2client.GetOptions {
	var o v2client.GetOptions
	o.Sorted, _ = cmd.Flags().GetBool("sort")
	o.Quorum, _ = cmd.Flags().GetBool("quorum")
	o.Recursive, _ = cmd.Flags().GetBool("recursive")
	return o
}

func (k *kvCmd) get(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	ev, err := c.Get(ctx, key, getOptions(cmd))
	if err != nil {
		return kvError(err)
	}
	if ev.Node.Dir {
		return &exitStatusError{code: exitBadArgs, err: fmt.Errorf("%s: is a directory", ev.Node.Key), bare: true}
	}
	return printResponse(k.stdout, ev, k.output)
}

// ls prints key names in the simple format (a file lists itself, a
// directory its children) and the whole answer in the others.
func (k *kvCmd) ls(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
	key := "/"
	if len(args) > 0 {
		key = args[0]
	}
	ev, err := c.Get(ctx, key, getOptions(cmd))
	if err != nil {
		return kvError(err)
	}
	if k.output != outputSimple {
		return printResponse(k.stdout, ev, k.output)
	}
	slash, _ := cmd.Flags().GetBool("slash")
	var b strings.Builder
	if !ev.Node.Dir {
		b.WriteString(ev.Node.Key + "\n")
	}
	var walk func(n *store.NodeExtern)
	walk = func(n *store.NodeExtern) {
		b.WriteString(n.Key)
		if n.Dir && slash {
			b.WriteByte('/')
		}
		b.WriteByte('\n')
		for _, child := range n.Nodes {
			walk(child)
		}
	}
	for _, n := range ev.Node.Nodes {
		walk(n)
	}
	_, err = io.WriteString(k.stdout, b.String())
	return err
}

// completeKey completes the key argument from the cluster: the children of
// the directory typed so far, directories with a trailing slash.
func (k *kvCmd) completeKey(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	c, err := k.cf.Client(k.environ)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer c.Close()
	dir := "/"
	if i := strings.LastIndexByte(toComplete, '/'); i > 0 {
		dir = toComplete[:i]
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ev, err := c.Get(ctx, dir, v2client.GetOptions{Sorted: true})
	if err != nil || !ev.Node.Dir {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, n := range ev.Node.Nodes {
		name := n.Key
		if n.Dir {
			name += "/"
		}
		if strings.HasPrefix(name, toComplete) || strings.HasPrefix(name, v2client.CanonicalKey(toComplete)) {
			out = append(out, name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
