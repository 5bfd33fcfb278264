package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cmd/cairn/bootstrap"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
)

func newDiscoveryCmd(stdout io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{Use: "discovery", Short: "Make discovery tokens that bootstrap new clusters (cairn serve --discovery)"}
	var size int
	var prefix string
	create := &cobra.Command{
		Use:   "new",
		Short: "Create a discovery token for a new cluster of --size members and print its URL",
		Long: `Create a discovery token in a running Cairn cluster (etcd's v2 discovery
protocol): the key <prefix>/<token>/_config/size holding --size. Its URL,
https://HOST:PORT/v2/keys/<prefix>/<token> on the first endpoint that
answered, is the last line printed. Start each member of the new cluster,
with an empty data dir, with --discovery URL: the first --size members to
register form the cluster, one more is refused. The members register with
their own certificates, which the discovery cluster must accept (see
docs/clustering.md, "Bootstrap by discovery").

The connection flags are those of the other client commands.`,
		Example: `  cairn discovery new --size 3 --data-dir /tmp/disc
  cairn discovery new --size 5 --endpoints https://10.0.0.1:4001 --cert admin.crt --key admin.key --cacert ca.crt`,
		Args: cobra.NoArgs,
	}
	cf := clientflags.Add(create.Flags())
	create.Flags().IntVar(&size, "size", 3, "number of founding members")
	create.Flags().StringVar(&prefix, "prefix", bootstrap.DefaultPrefix, "key directory of the tokens")
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cf.Client(environ)
		if err != nil {
			return err
		}
		defer c.Close()
		u, err := bootstrap.NewToken(cmd.Context(), c, prefix, size)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, u)
		return err
	}
	cmd.AddCommand(create)
	return cmd
}
