package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cmd/cairn/bench"
)

// benchShort describes each workload subcommand of cairn bench.
var benchShort = map[string]string{
	"put":     "Write keys (PUT value) in turn",
	"get":     "Read keys written first: linearizable (quorum=true), or local with --stale",
	"refresh": "Heartbeat keys written first with a TTL (PUT ?refresh=true&prevExist=true&ttl=N)",
	"watch":   "Time each write's delivery to --clients watchers of one key, one write at a time",
	"dns":     "Query --dns-name (A or SRV) at --dns-addr over UDP, registered first through --endpoints",
}

func newBenchCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a Cairn or etcd v2 cluster (put, get, refresh, watch, dns) and compare two",
		Long: `Apply one workload to the members of --endpoints (Cairn, or any etcd v2
endpoint over mutual TLS), spreading the requests over them in turn, from
--clients concurrent clients for --duration or --requests, and print the
rate and the latency percentiles (p50, p90, p99, p99.9, max) as a table or
--json. A progress line goes to stderr when it is a terminal (or with
--progress). The exit status is 1 when no request succeeded; failed
requests are counted in the table, by kind.

"cairn bench refresh --interval 10s" paces the heartbeats instead: each
of --keys registrations heartbeats once per interval, and the report adds
the heartbeats sent late, the registrations lost, each member's CPU and
memory and the raft entries per heartbeat.

"cairn bench compare" runs workloads on two clusters alternately and prints
the medians and the ratios, second cluster over first.

The connection flags are those of the other client commands.`,
		Example: `  cairn bench put --data-dir /tmp/cairn-dev --clients 64 --duration 10s
  cairn bench get --stale --endpoints https://10.0.0.1:4001,https://10.0.0.2:4001 --json
  cairn bench refresh --keys 100000 --ttl 30s --interval 10s --duration 5m
  cairn bench compare --a https://127.0.0.1:2379 --b https://127.0.0.1:4001 put,clients=64 get,clients=64,stale`,
	}
	c := bench.AddFlags(cmd.PersistentFlags())
	for _, w := range bench.Workloads {
		sub := &cobra.Command{Use: w, Short: benchShort[w], Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return c.Run(cmd.Context(), w, environ, stdout, stderr)
			}}
		switch w {
		case "get":
			c.AddGetFlags(sub.Flags())
		case "refresh":
			c.AddRefreshFlags(sub.Flags())
		}
		cmd.AddCommand(sub)
	}
	compare := &cobra.Command{
		Use:   "compare --a URLS --b URLS WORKLOAD[,SETTING=VALUE...]...",
		Short: "Run workloads on two clusters alternately (A, B, A, B, ...) and print medians and B/A ratios",
		Long: `Run each workload --rounds times on cluster A (--a) and on cluster B (--b),
alternately, and print per workload the median rate and p50/p99 on each, and
the ratios B/A: a rate ratio above 1 means B serves more per second, a p99
ratio below 1 means B answers sooner. Both clusters get the same requests.

A workload is a name (put, get, refresh, watch, dns) followed by settings
that override the flags for it: clients, requests, duration, keys,
value-size, prefix, stale, ttl, dns-addr, dns-name, dns-type. Each side
takes --cert, --key and --cacert unless --a-cert/--a-key/--a-cacert (or the
--b- ones) are given.`,
		Example: `  cairn bench compare --a-name etcd --a https://127.0.0.1:2379 --b-name cairn --b https://127.0.0.1:4001 \
    --cert client.crt --key client.key --cacert ca.crt --duration 5s \
    put,clients=1 put,clients=64 get,clients=64 get,clients=64,stale refresh,clients=64,keys=10000`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.Compare(cmd.Context(), args, environ, stdout, stderr)
		},
	}
	c.AddCompareFlags(compare.Flags())
	cmd.AddCommand(compare)
	return cmd
}
