package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/cluster/v2client"
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
	cf := addClientFlags(cmd.Flags())
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
func (o *registerOptions) registrarConfig(fs *pflag.FlagSet, cf *clientFlags, environ []string, stderr io.Writer) (discovery.RegistrarConfig, *v2client.Client, error) {
	o.checkIntervalSet, o.checkTimeoutSet = fs.Changed("check-interval"), fs.Changed("check-timeout")
	cfg, err := o.config()
	if err != nil {
		return cfg, nil, err
	}
	cs, err := cf.resolve(environ)
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
	ccfg, err := cs.config()
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

// config checks the registration flags and returns the registrar
// configuration they make, without the connection.
func (o *registerOptions) config() (discovery.RegistrarConfig, error) {
	var cfg discovery.RegistrarConfig
	if o.service == "" {
		return cfg, errors.New("--service is required, e.g. --service web")
	}
	if o.instance == "" {
		return cfg, errors.New("--instance is required, e.g. --instance web-1 (unique within the service)")
	}
	for _, lab := range strings.Split(o.service, ".") {
		if !isDNSLabel(lab) {
			return cfg, fmt.Errorf("--service %q: want DNS labels (letters, digits and '-', at most 63 each, separated by dots)", o.service)
		}
	}
	if !isDNSLabel(o.instance) {
		return cfg, fmt.Errorf("--instance %q: want a DNS label (letters, digits and '-', at most 63)", o.instance)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"port", o.port}, {"priority", o.priority}, {"weight", o.weight}} {
		if f.v < 0 || f.v > 65535 {
			return cfg, fmt.Errorf("--%s %d: want 0 to 65535", f.name, f.v)
		}
	}
	if o.host == "" && o.text == "" {
		return cfg, errors.New("--host is required (an IP address or a hostname), unless --text is set")
	}
	switch {
	case o.ttl < time.Second:
		return cfg, fmt.Errorf("--ttl %v: want at least 1s", o.ttl)
	case o.ttl%time.Second != 0:
		return cfg, fmt.Errorf("--ttl %v: want whole seconds, e.g. 10s", o.ttl)
	}
	cfg.Record = discovery.Record{Host: o.host, Port: o.port, Priority: o.priority, Weight: o.weight, Text: o.text}
	if err := cfg.Record.Validate(); err != nil {
		return cfg, err
	}
	cfg.TTL = o.ttl
	if o.prefix == "" {
		return cfg, fmt.Errorf("--prefix is empty: want a key directory such as %s", discovery.DefaultPrefix)
	}
	if o.domain == "" {
		return cfg, fmt.Errorf("--domain is empty: want a DNS domain such as %s", discovery.DefaultDomain)
	}
	key, ok := discovery.Config{Prefix: o.prefix, Domain: o.domain}.Key(o.instance + "." + o.service)
	if !ok {
		return cfg, fmt.Errorf("--domain %q: want a DNS domain such as %s", o.domain, discovery.DefaultDomain)
	}
	cfg.Key = key

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
		u, err := url.Parse(o.checkHTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("--check-http %q: want an http:// or https:// URL", o.checkHTTP)
		}
		cfg.Check = httpCheck(o.checkHTTP)
	case o.checkTCP != "":
		if _, port, err := net.SplitHostPort(o.checkTCP); err != nil || port == "" {
			return cfg, fmt.Errorf("--check-tcp %q: want HOST:PORT", o.checkTCP)
		}
		cfg.Check = tcpCheck(o.checkTCP)
	case o.checkExec != "":
		cfg.Check = execCheck(o.checkExec)
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
	return cfg, nil
}

// isDNSLabel reports whether s is an RFC 1123 label: letters, digits and
// hyphens, not at either end, 1 to 63 bytes.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// maxCheckOutput bounds what a check's answer or output contributes to the
// log.
const maxCheckOutput = 512

// httpCheck passes when GET url answers 2xx within the check's deadline.
// It goes to the service directly (no proxy) on a new connection each
// time, and verifies https against the system's roots.
func httpCheck(u string) func(context.Context) error {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "cairn-register")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxCheckOutput))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil
	}
}

// tcpCheck passes when a TCP connection to addr opens.
func tcpCheck(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// execCheck passes when `sh -c command` exits 0. At the check's deadline
// the shell is killed (what it started may outlive it; use exec in the
// command to avoid that).
func execCheck(command string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		out := &tailBuffer{max: maxCheckOutput}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = time.Second // bound the wait for pipes a child holds open
		err := cmd.Run()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if s := strings.TrimSpace(out.String()); s != "" {
			return fmt.Errorf("%s: %w: %s", command, err, s)
		}
		return fmt.Errorf("%s: %w", command, err)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
