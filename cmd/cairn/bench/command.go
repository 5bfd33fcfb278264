package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// Command is `cairn bench`: its flags and what its subcommands do. The
// cobra wiring lives in package main.
type Command struct {
	cf                 *clientflags.Flags
	cfg                Config
	json, progress, md bool

	// compare's
	a, b, nameA, nameB string
	aFiles, bFiles     tlsconf.Files
	rounds             int
}

// AddFlags defines the flags every bench subcommand takes (persistent on
// `cairn bench`): the client connection flags and the load.
func AddFlags(fs *pflag.FlagSet) *Command {
	c := &Command{cf: clientflags.Add(fs)}
	fs.Lookup("endpoints").Usage = "comma-separated https URLs of the members (Cairn or etcd v2), sent requests in turn (env CAIRN_ENDPOINTS; default " + clientflags.DefaultEndpoint + ")"
	d := Defaults
	fs.IntVar(&c.cfg.Clients, "clients", 0, fmt.Sprintf("concurrent clients, one request in flight each (watch: the number of watchers; refresh --interval: the most heartbeats in flight) (default %d; %d with --interval)", d.Clients, defaultPacedClients))
	fs.DurationVar(&c.cfg.Duration, "duration", d.Duration, "how long each run lasts, unless --requests is given")
	fs.IntVar(&c.cfg.Requests, "requests", 0, "stop after this many requests (watch: writes) instead of after --duration")
	fs.IntVar(&c.cfg.Keys, "keys", d.Keys, "number of keys written, read or refreshed in turn")
	fs.IntVar(&c.cfg.ValueSize, "value-size", d.ValueSize, "bytes of each value written")
	fs.StringVar(&c.cfg.Prefix, "prefix", d.Prefix, "directory the keys are written under")
	fs.DurationVar(&c.cfg.TTL, "ttl", d.TTL, "refresh: the TTL the keys get and are refreshed with")
	fs.StringVar(&c.cfg.DNSAddr, "dns-addr", d.DNSAddr, "dns: the responder's UDP address")
	fs.StringVar(&c.cfg.DNSName, "dns-name", d.DNSName, "dns: the name queried; registered first through --endpoints")
	fs.StringVar(&c.cfg.DNSType, "dns-type", d.DNSType, "dns: the query type, A or SRV")
	fs.BoolVar(&c.json, "json", false, "write the results as JSON instead of a table")
	fs.BoolVar(&c.progress, "progress", false, "write a progress line a second to stderr even when it is not a terminal")
	return c
}

// AddGetFlags defines get's own flag.
func (c *Command) AddGetFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.cfg.Stale, "stale", false, "read the member's local replica (stale=true) instead of a linearizable read (quorum=true)")
}

// AddRefreshFlags defines refresh's own flag.
func (c *Command) AddRefreshFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.cfg.Interval, "interval", 0, "pace the run: each of --keys registrations heartbeats once per interval, spread over time and the members (100000 keys at 10s: 10000/s), and the report adds the late and lost heartbeats, each member's CPU and memory and the raft entries per heartbeat; 0: as fast as --clients go")
}

// AddCompareFlags defines compare's own flags.
func (c *Command) AddCompareFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.a, "a", "", "comma-separated https URLs of the first cluster's members (required)")
	fs.StringVar(&c.b, "b", "", "comma-separated https URLs of the second cluster's members (required)")
	fs.StringVar(&c.nameA, "a-name", "A", "the first cluster's name in the report")
	fs.StringVar(&c.nameB, "b-name", "B", "the second cluster's name in the report")
	for _, s := range []struct {
		side string
		f    *tlsconf.Files
	}{{"a", &c.aFiles}, {"b", &c.bFiles}} {
		fs.StringVar(&s.f.CertFile, s.side+"-cert", "", "client certificate for --"+s.side+" (default --cert)")
		fs.StringVar(&s.f.KeyFile, s.side+"-key", "", "its key (default --key)")
		fs.StringVar(&s.f.CAFile, s.side+"-cacert", "", "CA bundle of --"+s.side+"'s members (default --cacert)")
	}
	fs.IntVar(&c.rounds, "rounds", 3, "runs of each workload on each cluster, alternated")
	fs.BoolVar(&c.md, "markdown", false, "write the table as Markdown")
}

func (c *Command) progressTo(stderr io.Writer) *Progress {
	f, ok := stderr.(*os.File)
	term := false
	if ok {
		if st, err := f.Stat(); err == nil {
			term = st.Mode()&os.ModeCharDevice != 0
		}
	}
	if !term && !c.progress {
		return nil
	}
	return &Progress{W: stderr, Live: term}
}

// Run runs one workload against --endpoints and prints its result.
func (c *Command) Run(ctx context.Context, workload string, environ []string, stdout, stderr io.Writer) error {
	cfg := c.cfg
	cfg.Workload = workload
	var tg Target
	s, err := c.cf.Resolve(environ)
	if err == nil {
		tg, err = target(s.Endpoints, s.Files, s.Timeout)
	}
	if err != nil && workload != "dns" {
		return err
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: no client connection (%v): querying %s without registering %s first\n", err, cfg.DNSAddr, cfg.DNSName)
		tg = Target{}
	}
	r, err := Run(ctx, tg, cfg, c.progressTo(stderr))
	if err != nil {
		return clientflags.WithHints(err)
	}
	if c.json {
		err = WriteJSON(stdout, r)
	} else {
		err = WriteTable(stdout, r)
	}
	if err == nil && r.Requests == 0 {
		err = fmt.Errorf("no request succeeded in %.1fs: %s", r.Seconds, r.FirstError)
	}
	return err
}

// Compare runs the workloads given as specs (see ParseSpec) on --a and
// --b and prints the comparison.
func (c *Command) Compare(ctx context.Context, specs []string, environ []string, stdout, stderr io.Writer) error {
	if c.a == "" || c.b == "" {
		return errors.New("compare needs both clusters: --a URLs and --b URLs")
	}
	if len(specs) == 0 {
		return fmt.Errorf("name at least one workload to compare, e.g. put,clients=64 or get,clients=64,stale (workloads: %s)", strings.Join(Workloads, ", "))
	}
	cc := CompareConfig{NameA: c.nameA, NameB: c.nameB, Rounds: c.rounds}
	for _, s := range specs {
		w, err := ParseSpec(c.cfg, s)
		if err != nil {
			return err
		}
		cc.Workloads = append(cc.Workloads, w)
	}
	var shared *clientflags.Settings
	side := func(raw string, own tlsconf.Files) (Target, error) {
		eps, err := clientflags.ParseEndpoints(raw)
		if err != nil {
			return Target{}, err
		}
		if shared == nil && (own.CertFile == "" || own.KeyFile == "" || own.CAFile == "") {
			s, err := c.cf.Resolve(environ)
			if err != nil {
				return Target{}, err
			}
			shared = &s
		}
		f := own
		if f.CertFile == "" && f.KeyFile == "" {
			f.CertFile, f.KeyFile = shared.Files.CertFile, shared.Files.KeyFile
		}
		if f.CAFile == "" {
			f.CAFile = shared.Files.CAFile
		}
		timeout := 5 * time.Second
		if shared != nil {
			timeout = shared.Timeout
		}
		return target(eps, f, timeout)
	}
	var err error
	if cc.A, err = side(c.a, c.aFiles); err != nil {
		return fmt.Errorf("--a: %w", err)
	}
	if cc.B, err = side(c.b, c.bFiles); err != nil {
		return fmt.Errorf("--b: %w", err)
	}
	cmp, err := Compare(ctx, cc, c.progressTo(stderr))
	if err != nil {
		return clientflags.WithHints(err)
	}
	if c.json {
		return WriteJSON(stdout, cmp)
	}
	return cmp.WriteTable(stdout, c.md)
}

func target(eps []string, f tlsconf.Files, timeout time.Duration) (Target, error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return Target{}, errors.New("a client certificate and its key go together: pass both")
	}
	tc, err := tlsconf.ClientConfigFromFiles(f)
	if err != nil {
		return Target{}, err
	}
	return Target{Endpoints: eps, TLS: tc, Timeout: timeout}, nil
}
