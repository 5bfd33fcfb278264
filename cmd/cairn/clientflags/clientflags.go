package clientflags

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// Defaults of the client commands (member, and the key and status commands
// that share this client).
const (
	DefaultEndpoint = "https://127.0.0.1:4001"
	DefaultTimeout  = v2client.DefaultTimeout
	// MaxResponseBytes bounds a response body read into memory.
	MaxResponseBytes = 64 << 20
)

// Flags are the connection flags of a client command. Each setting
// comes from its flag, else its CAIRN_* variable, else the development PKI
// of a local data dir (see Resolve).
type Flags struct {
	endpoints, cert, key, cacert, dataDir string
	timeout                               time.Duration
}

// Add defines the connection flags on fs (a command's persistent
// flags, so that every subcommand takes them).
func Add(fs *pflag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.endpoints, "endpoints", "", "comma-separated https URLs of Cairn members, tried in order (env CAIRN_ENDPOINTS; default "+DefaultEndpoint+")")
	fs.StringVar(&f.cert, "cert", "", "client certificate file (env CAIRN_CERT; default <data-dir>/pki/client.crt)")
	fs.StringVar(&f.key, "key", "", "private key of --cert (env CAIRN_KEY; default <data-dir>/pki/client.key)")
	fs.StringVar(&f.cacert, "cacert", "", "CA bundle the members' certificates chain to (env CAIRN_CACERT; default <data-dir>/pki/ca.crt)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data dir of a local member whose development PKI is used when no certificate is given (default $CAIRN_DATA_DIR, else <$CAIRN_NAME or \"default\">.cairn, as cairn serve)")
	fs.DurationVar(&f.timeout, "timeout", DefaultTimeout, "timeout of each request to one endpoint, connection included")
	return f
}

// Settings are resolved connection settings.
type Settings struct {
	Endpoints []string // https://host:port, in the order to try
	Files     tlsconf.Files
	Timeout   time.Duration
}

// Resolve applies the precedence flag > environment > development PKI,
// separately for the endpoints, the key pair and the CA. The key pair is
// taken as a pair: a certificate from one place and its key from another
// is an error. The development PKI is <data-dir>/pki/{ca.crt,client.crt,
// client.key}. The default endpoint is the local member,
// https://127.0.0.1:4001.
func (f *Flags) Resolve(environ []string) (Settings, error) {
	env := envMap(environ)
	s := Settings{Timeout: f.timeout}
	if s.Timeout <= 0 {
		return s, fmt.Errorf("--timeout must be positive, not %v", f.timeout)
	}

	raw, from := f.endpoints, "--endpoints"
	if raw == "" {
		raw, from = env["CAIRN_ENDPOINTS"], "CAIRN_ENDPOINTS"
	}
	if raw == "" {
		raw, from = DefaultEndpoint, "default endpoint"
	}
	eps, err := ParseEndpoints(raw)
	if err != nil {
		return s, fmt.Errorf("%s: %w", from, err)
	}
	s.Endpoints = eps

	dataDir, dirFrom := f.dataDir, "--data-dir"
	if dataDir == "" {
		dataDir, dirFrom = env["CAIRN_DATA_DIR"], "CAIRN_DATA_DIR"
	}
	if dataDir == "" {
		name := env["CAIRN_NAME"]
		if name == "" {
			name = "default"
		}
		dataDir, dirFrom = name+".cairn", "default --data-dir"
	}
	dev := pki.DevPaths(filepath.Join(dataDir, "pki"))

	switch {
	case f.cert != "" || f.key != "":
		if f.cert == "" || f.key == "" {
			return s, errors.New("--cert and --key go together: pass both")
		}
		s.Files.CertFile, s.Files.KeyFile = f.cert, f.key
	case env["CAIRN_CERT"] != "" || env["CAIRN_KEY"] != "":
		if env["CAIRN_CERT"] == "" || env["CAIRN_KEY"] == "" {
			return s, errors.New("CAIRN_CERT and CAIRN_KEY go together: set both")
		}
		s.Files.CertFile, s.Files.KeyFile = env["CAIRN_CERT"], env["CAIRN_KEY"]
	default:
		cert, key := dev.ClientCertFile, dev.ClientKeyFile
		if !fileExists(cert) || !fileExists(key) {
			return s, fmt.Errorf("no client certificate: pass --cert/--key, set CAIRN_CERT/CAIRN_KEY, or run on a node with a development PKI in --data-dir (%s %s has no %s)", dirFrom, dataDir, filepath.Join("pki", "client.crt"))
		}
		s.Files.CertFile, s.Files.KeyFile = cert, key
	}

	switch {
	case f.cacert != "":
		s.Files.CAFile = f.cacert
	case env["CAIRN_CACERT"] != "":
		s.Files.CAFile = env["CAIRN_CACERT"]
	default:
		ca := dev.CAFile
		if !fileExists(ca) {
			return s, fmt.Errorf("no CA certificate to verify the members with: pass --cacert, set CAIRN_CACERT, or run on a node with a development PKI in --data-dir (%s %s has no %s)", dirFrom, dataDir, filepath.Join("pki", "ca.crt"))
		}
		s.Files.CAFile = ca
	}
	return s, nil
}

// Config resolves the settings and loads the TLS material: the
// configuration of a v2client.Client.
func (f *Flags) Config(environ []string) (v2client.Config, error) {
	s, err := f.Resolve(environ)
	if err != nil {
		return v2client.Config{}, err
	}
	return s.Config()
}

// Config loads the TLS material of s: the configuration of a
// v2client.Client.
func (s Settings) Config() (v2client.Config, error) {
	tc, err := tlsconf.ClientConfigFromFiles(s.Files)
	if err != nil {
		return v2client.Config{}, err
	}
	return v2client.Config{Endpoints: s.Endpoints, TLS: tc, Timeout: s.Timeout,
		MaxResponseBytes: MaxResponseBytes, CAFile: s.Files.CAFile, CertFile: s.Files.CertFile}, nil
}

// Client resolves the settings and returns a client; the caller closes it.
func (f *Flags) Client(environ []string) (*v2client.Client, error) {
	cfg, err := f.Config(environ)
	if err != nil {
		return nil, err
	}
	return v2client.New(cfg)
}

// ParseEndpoints splits a comma-separated list of https URLs and returns
// them as https://host:port.
func ParseEndpoints(raw string) ([]string, error) {
	var eps []string
	for _, e := range strings.Split(raw, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	return v2client.CheckEndpoints(eps)
}

// WithHints adds to a client error what to do about it on this command
// line: which flag or variable to change.
func WithHints(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, v2client.ErrMayHaveApplied):
		return fmt.Errorf("%w: check (e.g. cairn member list, cairn kv get) before retrying", err)
	case errors.Is(err, v2client.ErrUnavailable) && errors.Is(err, v2client.ErrUntrustedMember):
		return fmt.Errorf("%w; pass the cluster's CA with --cacert or CAIRN_CACERT", err)
	case errors.Is(err, v2client.ErrUnavailable) && errors.Is(err, v2client.ErrTimeout):
		return fmt.Errorf("%w; check that a member runs there, raise --timeout, or pass --endpoints or set CAIRN_ENDPOINTS", err)
	case errors.Is(err, v2client.ErrUnavailable):
		return fmt.Errorf("%w; check that a member runs there, or pass --endpoints or set CAIRN_ENDPOINTS", err)
	}
	return err
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
