package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// Defaults of the client commands (member, and the key and status commands
// that share this client).
const (
	defaultClientEndpoint = "https://127.0.0.1:4001"
	defaultClientTimeout  = 5 * time.Second
	// maxResponseBytes bounds a response body read into memory.
	maxResponseBytes = 64 << 20
)

// clientFlags are the connection flags of a client command. Each setting
// comes from its flag, else its CAIRN_* variable, else the development PKI
// of a local data dir (see resolve).
type clientFlags struct {
	endpoints, cert, key, cacert, dataDir string
	timeout                               time.Duration
}

// addClientFlags defines the connection flags on fs (a command's persistent
// flags, so that every subcommand takes them).
func addClientFlags(fs *pflag.FlagSet) *clientFlags {
	f := &clientFlags{}
	fs.StringVar(&f.endpoints, "endpoints", "", "comma-separated https URLs of Cairn members, tried in order (env CAIRN_ENDPOINTS; default "+defaultClientEndpoint+")")
	fs.StringVar(&f.cert, "cert", "", "client certificate file (env CAIRN_CERT; default <data-dir>/pki/client.crt)")
	fs.StringVar(&f.key, "key", "", "private key of --cert (env CAIRN_KEY; default <data-dir>/pki/client.key)")
	fs.StringVar(&f.cacert, "cacert", "", "CA bundle the members' certificates chain to (env CAIRN_CACERT; default <data-dir>/pki/ca.crt)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data dir of a local member whose development PKI is used when no certificate is given (default $CAIRN_DATA_DIR, else <$CAIRN_NAME or \"default\">.cairn, as cairn serve)")
	fs.DurationVar(&f.timeout, "timeout", defaultClientTimeout, "timeout of each request to one endpoint, connection included")
	return f
}

// clientSettings are resolved connection settings.
type clientSettings struct {
	Endpoints []string // https://host:port, in the order to try
	Files     tlsconf.Files
	Timeout   time.Duration
}

// resolve applies the precedence flag > environment > development PKI,
// separately for the endpoints, the key pair and the CA. The key pair is
// taken as a pair: a certificate from one place and its key from another
// is an error. The development PKI is <data-dir>/pki/{ca.crt,client.crt,
// client.key}. The default endpoint is the local member,
// https://127.0.0.1:4001.
func (f *clientFlags) resolve(environ []string) (clientSettings, error) {
	env := envMap(environ)
	s := clientSettings{Timeout: f.timeout}
	if s.Timeout <= 0 {
		return s, fmt.Errorf("--timeout must be positive, not %v", f.timeout)
	}

	raw, from := f.endpoints, "--endpoints"
	if raw == "" {
		raw, from = env["CAIRN_ENDPOINTS"], "CAIRN_ENDPOINTS"
	}
	if raw == "" {
		raw, from = defaultClientEndpoint, "default endpoint"
	}
	eps, err := parseEndpoints(raw)
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
	pki := filepath.Join(dataDir, "pki")

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
		cert, key := filepath.Join(pki, "client.crt"), filepath.Join(pki, "client.key")
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
		ca := filepath.Join(pki, "ca.crt")
		if !fileExists(ca) {
			return s, fmt.Errorf("no CA certificate to verify the members with: pass --cacert, set CAIRN_CACERT, or run on a node with a development PKI in --data-dir (%s %s has no %s)", dirFrom, dataDir, filepath.Join("pki", "ca.crt"))
		}
		s.Files.CAFile = ca
	}
	return s, nil
}

// client resolves the settings and returns a client; the caller closes it.
func (f *clientFlags) client(environ []string) (*apiClient, error) {
	s, err := f.resolve(environ)
	if err != nil {
		return nil, err
	}
	return newAPIClient(s)
}

// parseEndpoints splits a comma-separated list of https URLs and returns
// them as scheme://host.
func parseEndpoints(raw string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(raw, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			return nil, fmt.Errorf("endpoint %q is not a URL: write https://%s", e, e)
		}
		u, err := url.Parse(e)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", e, err)
		}
		switch {
		case u.Scheme == "http":
			return nil, fmt.Errorf("endpoint %q: Cairn serves HTTPS only: write https://%s", e, u.Host)
		case u.Scheme != "https":
			return nil, fmt.Errorf("endpoint %q: the scheme must be https", e)
		case u.Host == "":
			return nil, fmt.Errorf("endpoint %q has no host", e)
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return nil, fmt.Errorf("endpoint %q: give only https://host:port", e)
		}
		out = append(out, "https://"+u.Host)
	}
	if len(out) == 0 {
		return nil, errors.New("no endpoint given")
	}
	return out, nil
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

// apiClient calls the etcd v2 API of a Cairn cluster over mutual TLS. It
// tries the endpoints in order and fails over on connection errors and
// timeouts; an HTTP answer, whatever its status, is the cluster's answer
// (every member serves every request). A request that is not idempotent is
// not sent to another endpoint once it may have reached one.
type apiClient struct {
	endpoints []string
	timeout   time.Duration
	files     tlsconf.Files
	hc        *http.Client
	tr        *http.Transport
}

func newAPIClient(s clientSettings) (*apiClient, error) {
	tc, err := tlsconf.ClientConfigFromFiles(s.Files)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: s.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: s.Timeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	return &apiClient{
		endpoints: s.Endpoints,
		timeout:   s.Timeout,
		files:     s.Files,
		hc:        &http.Client{Transport: tr},
		tr:        tr,
	}, nil
}

// Close releases the client's idle connections.
func (c *apiClient) Close() { c.tr.CloseIdleConnections() }

// apiRequest is one call. Path includes the query, e.g. "/v2/keys/a?wait=true".
type apiRequest struct {
	Method, Path string
	Body         []byte
	ContentType  string
}

// apiResponse is a complete answer.
type apiResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	Endpoint   string // the endpoint that answered
}

// do sends req to the first endpoint that answers. Each attempt has the
// client's timeout.
func (c *apiClient) do(ctx context.Context, req apiRequest) (*apiResponse, error) {
	var errs []string
	for _, ep := range c.endpoints {
		resp, sent, err := c.try(ctx, ep, req)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, ep+req.Path, ctx.Err())
		}
		why := c.explain(ctx, ep, err)
		if sent && !idempotent(req.Method) {
			return nil, fmt.Errorf("%s %s: %s; the member may have applied it, so it was not sent elsewhere: check (e.g. cairn member list) before retrying", req.Method, ep+req.Path, why)
		}
		errs = append(errs, ep+": "+why)
	}
	return nil, fmt.Errorf("no endpoint answered (%s); check that a member runs there, or pass --endpoints or set CAIRN_ENDPOINTS", strings.Join(errs, "; "))
}

func (c *apiClient) try(ctx context.Context, ep string, req apiRequest) (resp *apiResponse, sent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, ep+req.Path, body)
	if err != nil {
		return nil, false, err
	}
	if req.ContentType != "" {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	hresp, err := c.hc.Do(hr)
	if err != nil {
		return nil, wrote.Load(), err
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, true, fmt.Errorf("read the answer: %w", err)
	}
	if len(b) > maxResponseBytes {
		return nil, true, fmt.Errorf("the answer is larger than %d MiB", maxResponseBytes>>20)
	}
	return &apiResponse{StatusCode: hresp.StatusCode, Header: hresp.Header, Body: b, Endpoint: ep}, true, nil
}

func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// explain turns a transport error from ep into a sentence that says what
// to do.
func (c *apiClient) explain(ctx context.Context, ep string, err error) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ua):
		return fmt.Sprintf("the member's certificate is not signed by a CA in %s: pass the cluster's CA with --cacert or CAIRN_CACERT", c.files.CAFile)
	case errors.As(err, &he):
		return fmt.Sprintf("%v: use a host name or address that the member's certificate lists", he)
	case errors.As(err, &ci):
		return fmt.Sprintf("the member's certificate is not valid: %v", ci)
	case strings.Contains(err.Error(), "remote error: tls:"):
		return c.refused(remoteTLSError(err))
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("no answer within %v (--timeout)", c.timeout)
	case errors.As(err, &oe) && oe.Op == "dial":
		return oe.Error()
	}
	// With TLS 1.3 a member checks the client certificate after the client
	// has finished its handshake, so a refusal often surfaces as a closed
	// connection (broken pipe, reset, EOF) instead of the member's alert.
	// Ask once more, and wait for the alert this time.
	if alert, ok := c.refusesCertificate(ctx, ep); ok {
		return c.refused(alert)
	}
	return unwrapURLError(err).Error()
}

func (c *apiClient) refused(alert string) string {
	return fmt.Sprintf("the member refused the client certificate %s (%s): use one issued by the cluster's CA for client use", c.files.CertFile, alert)
}

// refusesCertificate reports whether the member at ep ends a TLS connection
// with an alert (such as "tls: unknown certificate authority") right after
// the handshake, before any request: what it does to a client certificate
// it does not accept.
func (c *apiClient) refusesCertificate(ctx context.Context, ep string) (alert string, ok bool) {
	u, err := url.Parse(ep)
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: c.tr.TLSClientConfig}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err == nil {
		defer conn.Close()
		// An accepting member waits for a request: the read times out.
		_ = conn.SetReadDeadline(time.Now().Add(min(c.timeout, time.Second)))
		_, err = conn.Read(make([]byte, 1))
	}
	if err != nil && strings.Contains(err.Error(), "remote error: tls:") {
		return remoteTLSError(err), true
	}
	return "", false
}

// remoteTLSError is the alert part of a TLS error, e.g. "tls: unknown
// certificate authority".
func remoteTLSError(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "remote error: "); i >= 0 {
		return s[i+len("remote error: "):]
	}
	return s
}

// unwrapURLError drops net/http's `Get "https://…":` prefix: do names the
// endpoint itself.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiError is a non-2xx answer: etcd's {"message":"..."} of the members,
// stats and auth endpoints, or its key error {"errorCode":…,"message":…,
// "cause":…}; anything else is shown as text.
type apiError struct {
	StatusCode int
	ErrorCode  int // etcd error code; 0 for {"message":…} answers
	Message    string
	Cause      string
	Endpoint   string
}

func (e *apiError) Error() string {
	msg := e.Message
	if e.ErrorCode != 0 {
		msg = fmt.Sprintf("%d: %s", e.ErrorCode, msg)
	}
	if e.Cause != "" {
		msg += " (" + e.Cause + ")"
	}
	if e.StatusCode >= 500 && !strings.HasPrefix(e.Message, "HTTP ") {
		msg += fmt.Sprintf(" (HTTP %d from %s; its log says why)", e.StatusCode, e.Endpoint)
	}
	return msg
}

func newAPIError(resp *apiResponse) *apiError {
	e := &apiError{StatusCode: resp.StatusCode, Endpoint: resp.Endpoint}
	var body struct {
		ErrorCode int    `json:"errorCode"`
		Message   string `json:"message"`
		Cause     string `json:"cause"`
	}
	if json.Unmarshal(resp.Body, &body) == nil && body.Message != "" {
		e.ErrorCode, e.Message, e.Cause = body.ErrorCode, body.Message, body.Cause
		return e
	}
	text := strings.TrimSpace(string(resp.Body))
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if text == "" {
		text = http.StatusText(resp.StatusCode)
	}
	e.Message = fmt.Sprintf("HTTP %d from %s: %s", resp.StatusCode, resp.Endpoint, text)
	return e
}

// call sends req and expects status want; the body of the answer, if v is
// not nil, is decoded into v. Any other status is an *apiError.
func (c *apiClient) call(ctx context.Context, req apiRequest, want int, v any) error {
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return newAPIError(resp)
	}
	if v != nil {
		if err := json.Unmarshal(resp.Body, v); err != nil {
			return fmt.Errorf("%s %s: unexpected answer from %s: %w", req.Method, req.Path, resp.Endpoint, err)
		}
	}
	return nil
}

// getJSON is call for a GET answered 200.
func (c *apiClient) getJSON(ctx context.Context, path string, v any) error {
	return c.call(ctx, apiRequest{Method: http.MethodGet, Path: path}, http.StatusOK, v)
}
