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
	create := &cobra.Command{Use: "new", Args: cobra.NoArgs,
		Short: "Create a discovery token for a new cluster of --size members and print its URL",
		Long: `Create a discovery token (etcd's v2 discovery protocol: the key
<prefix>/<token>/_config/size holding --size) in the cluster of --endpoints and
print its URL, https://HOST:PORT/v2/keys/<prefix>/<token>, as the last line.
Members started with an empty data dir and --discovery URL register there
with their own certificates; the first --size of them form the new cluster
(docs/clustering.md, "Bootstrap by discovery"). The connection flags are
those of the other client commands.`,
		Example: "  cairn discovery new --size 3 --endpoints https://10.0.0.1:4001 --cert admin.crt --key admin.key --cacert ca.crt"}
	cf := clientflags.Add(create.Flags())
	size := create.Flags().Int("size", 3, "number of founding members")
	prefix := create.Flags().String("prefix", bootstrap.DefaultPrefix, "key directory of the tokens")
	create.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cf.Client(environ)
		if err != nil {
			return err
		}
		defer c.Close()
		u, err := bootstrap.NewToken(cmd.Context(), c, *prefix, *size)
		if err == nil {
			_, err = fmt.Fprintln(stdout, u)
		}
		return err
	}
	cmd.AddCommand(create)
	return cmd
}
