package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/discovery"
)

// newRegisterCmd is `cairn register`: a foreground sidecar that keeps one
// service instance registered with discovery.Registrar.
func newRegisterCmd(stderr io.Writer, environ []string) *cobra.Command {
	o := &registerOptions{}
	cmd := &cobra.Command{
		Use:   "register --service NAME --instance ID --host ADDR [--port N] [flags]",
		Short: "Register a service instance and keep it registered while it is healthy (a sidecar)",
		Long: `Register one instance of a service for discovery and keep it registered,
in the foreground, until SIGTERM or SIGINT.

It writes the SkyDNS record of --host, --port, --priority, --weight and --text
at <prefix>/<domain reversed>/<service>/<instance> (by default instance web-1
of service web is /skydns/internal/cairn/web/web-1, answered in DNS as
web-1.web.cairn.internal and web.cairn.internal) with a TTL of --ttl, and
refreshes that TTL about every ttl/3 (with jitter). When the record is found
gone (it expired, was deleted, or the cluster lost it) it is written again at
once. Requests go to the member that answered last and fail over to the next
of --endpoints on a connection error, a timeout or a 5xx answer.

With a check (--check-http, --check-tcp or --check-exec, at most one) the
check runs before each heartbeat and every --check-interval; while it fails
no heartbeat is sent, so the record expires within --ttl and DNS stops
answering it; when the check passes again the record is written at once.

On SIGTERM or SIGINT the record is deleted at once (unless another
registration has replaced it) and the command exits 0. Every change of state
is logged to stderr: registered, heartbeat failed, endpoint switched, check
failing, check passing, deregistered.

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001.`,
		Example: `  cairn register --data-dir /tmp/cairn-dev --service web --instance web-1 \
      --host 10.0.0.5 --port 8080 --ttl 10s --check-http http://127.0.0.1:8080/health
  cairn register --endpoints https://10.0.0.1:4001,https://10.0.0.2:4001 \
      --cert web.crt --key web.key --cacert ca.crt \
      --service db --instance db-1 --host db-1.example.com --port 5432 --check-tcp 127.0.0.1:5432`,
		Args: cobra.NoArgs,
	}
	cf := clientflags.Add(cmd.Flags())
	// The registrar's own default fits the TTL; --timeout overrides it.
	to := cmd.Flags().Lookup("timeout")
	to.Usage, to.DefValue = "timeout of each request to one member, connection included (default ttl/4, between 1s and 5s)", "0s"
	o.addFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, client, err := o.registrarConfig(cmd.Flags(), cf, environ, stderr)
		if err != nil {
			return err
		}
		defer client.Close()
		r, err := discovery.NewRegistrar(cfg)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		return r.Run(ctx)
	}
	return cmd
}

// registerOptions are the flags of `cairn register` other than the
// connection's.
type registerOptions struct {
	service, instance, host, text  string
	port, priority, weight         int
	ttl                            time.Duration
	checkHTTP, checkTCP, checkExec string
	checkInterval, checkTimeout    time.Duration
	prefix, domain                 string
	logFormat, logLevel            string
	// Whether --check-interval and --check-timeout were given: 0 is then
	// an error, not the default.
	checkIntervalSet, checkTimeoutSet bool
}

func (o *registerOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.service, "service", "", "service name, a DNS label or dotted labels (required), e.g. web")
	fs.StringVar(&o.instance, "instance", "", "instance name, a DNS label unique within the service (required), e.g. web-1")
	fs.StringVar(&o.host, "host", "", "the instance's address: an IP (A/AAAA records) or a hostname (CNAME, SRV target); required unless --text is set")
	fs.IntVar(&o.port, "port", 0, "the instance's port, for SRV records (0-65535; 0: none)")
	fs.IntVar(&o.priority, "priority", 0, "SRV priority (0-65535)")
	fs.IntVar(&o.weight, "weight", 0, "SRV weight (0-65535)")
	fs.StringVar(&o.text, "text", "", "TXT record text")
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "TTL of the registration key, whole seconds: the record expires this long after the last heartbeat")
	fs.StringVar(&o.checkHTTP, "check-http", "", "health check: GET this http(s) URL; healthy on a 2xx answer")
	fs.StringVar(&o.checkTCP, "check-tcp", "", "health check: connect to this HOST:PORT over TCP")
	fs.StringVar(&o.checkExec, "check-exec", "", "health check: run this command with sh -c; healthy on exit status 0")
	fs.DurationVar(&o.checkInterval, "check-interval", 0, "how often the check runs (default and at most the heartbeat interval, ttl/3)")
	fs.DurationVar(&o.checkTimeout, "check-timeout", 0, "time a check may take before it counts as failed (default half the check interval, between 1s and 5s)")
	fs.StringVar(&o.prefix, "prefix", discovery.DefaultPrefix, "key directory of SkyDNS data (the server's [discovery] prefix)")
	fs.StringVar(&o.domain, "domain", discovery.DefaultDomain, "DNS domain of registrations (the server's [dns] domain)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug (every heartbeat), info, warn or error")
}

// registrarConfig checks the flags and turns them, with the connection
// settings, into a registrar configuration that logs to stderr and writes
// through the returned client (the caller closes it).
func (o *registerOptions) registrarConfig(fs *pflag.FlagSet, cf *clientflags.Flags, environ []string, stderr io.Writer) (discovery.RegistrarConfig, *v2client.Client, error) {
	o.checkIntervalSet, o.checkTimeoutSet = fs.Changed("check-interval"), fs.Changed("check-timeout")
	cfg, err := o.config()
	if err != nil {
		return cfg, nil, err
	}
	cs, err := cf.Resolve(environ)
	if err != nil {
		return cfg, nil, err
	}
	if !fs.Changed("timeout") {
		cs.Timeout = discovery.RequestTimeout(cfg.TTL)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return cfg, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		return cfg, nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	ccfg, err := cs.Config()
	if err != nil {
		return cfg, nil, err
	}
	// The client logs its endpoint switches with the registrar's lines.
	ccfg.Logger = cfg.Logger.With("key", cfg.Key)
	client, err := v2client.New(ccfg)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Keys = client
	return cfg, client, nil
}

// The registrar writes through Cairn's client.
var _ discovery.Keys = (*v2client.Client)(nil)

// config maps the registration flags to the registrar configuration,
// without the connection. discovery validates the names, the record and
// the checks; what is checked here is only what the flags themselves mean.
func (o *registerOptions) config() (discovery.RegistrarConfig, error) {
	var cfg discovery.RegistrarConfig
	switch {
	case o.service == "":
		return cfg, errors.New("--service is required, e.g. --service web")
	case o.instance == "":
		return cfg, errors.New("--instance is required, e.g. --instance web-1 (unique within the service)")
	case o.host == "" && o.text == "":
		return cfg, errors.New("--host is required (an IP address or a hostname), unless --text is set")
	case o.prefix == "":
		return cfg, fmt.Errorf("--prefix is empty: want a key directory such as %s", discovery.DefaultPrefix)
	case o.domain == "":
		return cfg, fmt.Errorf("--domain is empty: want a DNS domain such as %s", discovery.DefaultDomain)
	}
	key, err := discovery.Config{Prefix: o.prefix, Domain: o.domain}.InstanceKey(o.service, o.instance)
	if err != nil {
		return cfg, err
	}
	cfg.Key, cfg.TTL = key, o.ttl
	cfg.Record = discovery.Record{Host: o.host, Port: o.port, Priority: o.priority, Weight: o.weight, Text: o.text}

	var checks []string
	for _, c := range []struct{ flag, v string }{{"--check-http", o.checkHTTP}, {"--check-tcp", o.checkTCP}, {"--check-exec", o.checkExec}} {
		if c.v != "" {
			checks = append(checks, c.flag)
		}
	}
	switch {
	case len(checks) > 1:
		return cfg, fmt.Errorf("%s: give at most one check", strings.Join(checks, " and "))
	case len(checks) == 0 && (o.checkIntervalSet || o.checkTimeoutSet):
		return cfg, errors.New("--check-interval and --check-timeout need a check: --check-http, --check-tcp or --check-exec")
	case o.checkHTTP != "":
		cfg.Check, err = discovery.HTTPCheck(o.checkHTTP)
	case o.checkTCP != "":
		cfg.Check, err = discovery.TCPCheck(o.checkTCP)
	case o.checkExec != "":
		cfg.Check = discovery.ExecCheck(o.checkExec)
	}
	if err != nil {
		return cfg, err
	}
	interval := o.ttl / 3
	switch {
	case o.checkInterval < 0 || (o.checkIntervalSet && o.checkInterval == 0):
		return cfg, fmt.Errorf("--check-interval %v: want a positive duration", o.checkInterval)
	case o.checkInterval > interval:
		return cfg, fmt.Errorf("--check-interval %v: want at most the heartbeat interval, ttl/3 = %v (the check also runs before each heartbeat)", o.checkInterval, interval)
	case o.checkTimeout < 0 || (o.checkTimeoutSet && o.checkTimeout == 0):
		return cfg, fmt.Errorf("--check-timeout %v: want a positive duration", o.checkTimeout)
	}
	cfg.CheckInterval, cfg.CheckTimeout = o.checkInterval, o.checkTimeout
	return cfg, cfg.Validate()
}
