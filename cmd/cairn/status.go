package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/tlsauth/pki"
)

// newStatusCmd is `cairn status`: every member's health, raft position and
// certificate, in one table.
func newStatusCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	var output string
	var warn time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the members, the leader, raft index and term, health and certificate expiry",
		Long: `Show the cluster as each member sees it: for every member of /v2/members,
its name, ID, client URL and whether it leads; its health (GET /health);
its raft term and commit index (X-Raft-Term, X-Raft-Index) and store index
(X-Etcd-Index); and when the certificate it serves (from the TLS handshake)
expires. Then the leader, and when the client certificate in use expires.

Certificates past their renewal point are warned about on stderr: with a
third of their lifetime left (when managed certificates renew), or 30 days
before expiry for certificates that live longer than 90 days; --cert-warning
sets one threshold for all. While the cluster elects a leader (a node that
just started) status waits up to --timeout for one. The exit status is 1
when a member is unreachable or unhealthy, when there is no leader, or when
the members cannot be listed.

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001. Each member is then asked at its first client URL.`,
		Example: `  cairn status --data-dir /tmp/cairn-dev
  cairn status --endpoints https://10.0.0.1:4001,https://10.0.0.2:4001 -o json`,
		Args: cobra.NoArgs,
	}
	cf := clientflags.Add(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&warn, "cert-warning", 0, "warn about certificates that expire within this time (default: past their renewal point, a third of their lifetime, or 30 days for certificates that live over 90 days)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return fmt.Errorf("unsupported output format %q: use table or json", output)
		}
		c, err := cf.Client(environ)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		within := pki.RenewalWarning
		if warn > 0 {
			within = func(time.Time, time.Time) time.Duration { return warn }
		}
		r, err := c.Status(ctx, v2client.StatusOptions{WarnWithin: within})
		if err != nil {
			return clientflags.WithHints(err)
		}
		if output == "json" {
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			printStatus(stdout, r)
		}
		for _, w := range r.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if !r.Healthy {
			return fmt.Errorf("the cluster is not healthy: %s", strings.Join(r.Problems, "; "))
		}
		return nil
	}
	return cmd
}

// printStatus writes the report as a table, then the leader and the client
// certificate, then the problems.
func printStatus(w io.Writer, r *v2client.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tCLIENT URL\tLEADER\tHEALTH\tRAFT TERM\tRAFT INDEX\tETCD INDEX\tCERTIFICATE EXPIRES")
	for _, m := range r.Members {
		name, leader, health := m.Name, "", "healthy"
		if name == "" {
			name = "(unstarted)"
		}
		if m.IsLeader {
			leader = "*"
		}
		switch {
		case !m.Reachable:
			health = "unreachable"
		case !m.Healthy:
			health = "unhealthy"
		}
		term, index, etcdIndex, expires := "-", "-", "-", "-"
		if m.Reachable {
			term, index, etcdIndex = strconv.FormatUint(m.RaftTerm, 10), strconv.FormatUint(m.RaftIndex, 10), strconv.FormatUint(m.EtcdIndex, 10)
		}
		if m.Certificate != nil {
			expires = m.Certificate.Expiry()
		}
		ep := m.Endpoint
		if ep == "" {
			ep = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, m.ID, ep, leader, health, term, index, etcdIndex, expires)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if r.Leader != "" {
		fmt.Fprintf(w, "leader:             %s (%s)\n", r.LeaderName, r.Leader)
	} else {
		fmt.Fprintln(w, "leader:             none")
	}
	if ci := r.ClientCertificate; ci.File != "" {
		fmt.Fprintf(w, "client certificate: %s (%s) expires %s\n", ci.File, ci.Subject, ci.Expiry())
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "problem:           ", p)
	}
}
