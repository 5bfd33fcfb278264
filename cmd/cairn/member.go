package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
)

// newMemberCmd is etcdctl v2's `member` over /v2/members: the same
// arguments, output and checks, over Cairn's mutual TLS.
func newMemberCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List, add and remove cluster members (etcdctl v2 member)",
		Long: `List, add and remove the members of a Cairn cluster through the etcd v2
members API (/v2/members), with etcdctl v2's output.

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001.`,
		Example: `  cairn member list --data-dir /tmp/cairn-dev
  cairn member add node4 https://10.0.0.4:7001
  cairn member remove 8e9e05c52164694d
  cairn member transfer-leader --to n2`,
	}
	cf := clientflags.Add(cmd.PersistentFlags())
	run := func(fn func(ctx context.Context, c *v2client.Client, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := cf.Client(environ)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return clientflags.WithHints(fn(ctx, c, args))
		}
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the members: ID, name, peer and client URLs, and who leads",
		Args:  exactArgs(0, "no arguments accepted"),
		RunE: run(func(ctx context.Context, c *v2client.Client, _ []string) error {
			return memberList(ctx, c, stdout)
		}),
	}
	add := &cobra.Command{
		Use:   "add <name> <peerURL>",
		Short: "Add a member; then start it with that name and peer URL to join",
		Args:  exactArgs(2, "provide a name and a single member peerURL: cairn member add <name> <peerURL>"),
		RunE: run(func(ctx context.Context, c *v2client.Client, args []string) error {
			return memberAdd(ctx, c, stdout, args[0], args[1])
		}),
	}
	remove := &cobra.Command{
		Use:   "remove <memberID>",
		Short: "Remove a member by its hex ID (see cairn member list)",
		Args:  exactArgs(1, "provide a single member ID: cairn member remove <memberID>"),
		RunE: run(func(ctx context.Context, c *v2client.Client, args []string) error {
			return memberRemove(ctx, c, stdout, stderr, args[0])
		}),
	}
	var to string
	transfer := &cobra.Command{
		Use:   "transfer-leader",
		Short: "Hand the leadership to another member (before maintenance on the leader)",
		Long: `Hand the leadership to another voting member: the one named by --to, else
the most up-to-date one. Writes pause for about one round trip instead of an
election timeout. A leader stopping with SIGTERM does this by itself.`,
		Args: exactArgs(0, "no arguments accepted; name the new leader with --to"),
		RunE: run(func(ctx context.Context, c *v2client.Client, _ []string) error {
			m, err := c.TransferLeader(ctx, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Leadership transferred to %s (%s)\n", m.Name, m.ID)
			return nil
		}),
	}
	transfer.Flags().StringVar(&to, "to", "", "name or hex ID of the member to lead (default: the most up-to-date voter)")
	cmd.AddCommand(list, add, remove, transfer)
	return cmd
}

// exactArgs is cobra.ExactArgs with etcdctl's message.
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return errors.New(msg)
		}
		return nil
	}
}

// memberList prints etcdctl v2's `member list`: one line per member, a
// member that has not started yet (no name) as "<id>[unstarted]".
func memberList(ctx context.Context, c *v2client.Client, w io.Writer) error {
	members, err := c.Members(ctx)
	if err != nil {
		return err
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		return fmt.Errorf("failed to get leader: %w", err)
	}
	for _, m := range members {
		if m.Name == "" {
			fmt.Fprintf(w, "%s[unstarted]: peerURLs=%s\n", m.ID, strings.Join(m.PeerURLs, ","))
			continue
		}
		fmt.Fprintf(w, "%s: name=%s peerURLs=%s clientURLs=%s isLeader=%v\n",
			m.ID, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.ID == leader.ID)
	}
	return nil
}

// memberAdd is etcdctl v2's `member add`: it adds the member, then prints
// the configuration the new member starts with: etcdctl's lines (for
// scripts that read them), then the same for cairn serve.
func memberAdd(ctx context.Context, c *v2client.Client, w io.Writer, name, peerURL string) error {
	if name == "" {
		return errors.New("the member name must not be empty")
	}
	m, err := c.AddMember(ctx, []string{peerURL})
	if err != nil {
		return mayHaveApplied(err)
	}
	fmt.Fprintf(w, "Added member named %s with ID %s to cluster\n", name, m.ID)

	members, err := c.Members(ctx)
	if err != nil {
		return fmt.Errorf("member %s was added, but listing the members failed: %w", m.ID, err)
	}
	var conf, peers, self []string
	for _, mm := range members {
		n := mm.Name
		if mm.ID == m.ID {
			n = name
		}
		for _, u := range mm.PeerURLs {
			conf = append(conf, n+"="+u)
			if mm.ID == m.ID {
				self = append(self, hostOf(u))
			} else {
				peers = append(peers, hostOf(u))
			}
		}
	}
	fmt.Fprint(w, "\n")
	fmt.Fprintf(w, "ETCD_NAME=%q\n", name)
	fmt.Fprintf(w, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
	fmt.Fprintf(w, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
	// etcdctl's lines configure an etcd member; these configure cairn
	// serve, which joins the etcd 0.4 way, through the peers.
	if len(self) == 0 {
		self = []string{hostOf(peerURL)}
	}
	fmt.Fprintf(w, "CAIRN_NAME=%q\n", name)
	fmt.Fprintf(w, "CAIRN_PEER_ADDR=%q\n", self[0])
	fmt.Fprintf(w, "CAIRN_PEERS=%q\n", strings.Join(peers, ","))
	return nil
}

// hostOf is the host:port of a peer URL, as --peer-addr and --peers take it.
func hostOf(peerURL string) string {
	if u, err := url.Parse(peerURL); err == nil && u.Host != "" {
		return u.Host
	}
	return peerURL
}

// memberRemove is etcdctl v2's `member remove`: it checks the ID against the
// member list first (and points at the ID when given a name), then removes.
func memberRemove(ctx context.Context, c *v2client.Client, w, stderr io.Writer, arg string) error {
	members, err := c.Members(ctx)
	if err != nil {
		return fmt.Errorf("error while verifying ID against known members: %w", err)
	}
	// IDs compare as numbers, so that 0A finds member a.
	want, perr := strconv.ParseUint(arg, 16, 64)
	id := ""
	for _, m := range members {
		if got, err := strconv.ParseUint(m.ID, 16, 64); perr == nil && err == nil && got == want {
			id = m.ID
		}
		if m.Name == arg {
			fmt.Fprintf(stderr, "Found a member named %s; if this is correct, please use its ID, eg:\n\tcairn member remove %s\n\n", m.Name, m.ID)
		}
	}
	if id == "" {
		return fmt.Errorf("couldn't find a member in the cluster with an ID of %s (cairn member list shows the IDs)", arg)
	}
	if err := c.RemoveMember(ctx, id); err != nil {
		return fmt.Errorf("received an error trying to remove member %s: %w", id, mayHaveApplied(err))
	}
	fmt.Fprintf(w, "Removed member %s from cluster\n", id)
	return nil
}

// mayHaveApplied adds to a server error of a membership change what etcd
// leaves unsaid: a change that timed out may still take effect.
func mayHaveApplied(err error) error {
	if v2client.StatusCode(err) >= 500 {
		return fmt.Errorf("%w; the change may or may not have been made: check with cairn member list", err)
	}
	return err
}
