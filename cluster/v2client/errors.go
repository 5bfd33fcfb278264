package v2client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairnkv/cairn/store"
)

// Error is a failed answer that is not an etcd key error: the
// {"message":...} of the members, stats and auth endpoints, or a body that
// is not JSON (shown as its first line).
type Error struct {
	Status   int // HTTP status
	Message  string
	Endpoint string // the endpoint that answered
}

func (e *Error) Error() string {
	if e.Status >= 500 && !strings.HasPrefix(e.Message, "HTTP ") {
		return fmt.Sprintf("%s (HTTP %d from %s; its log says why)", e.Message, e.Status, e.Endpoint)
	}
	return e.Message
}

// StatusCode is the HTTP status, as (*store.Error).StatusCode is.
func (e *Error) StatusCode() int { return e.Status }

// responseError is the error of a failed answer: the *store.Error it
// carries (its Index from X-Etcd-Index when the body has none), else an
// *Error.
func responseError(resp *Response) error {
	se := new(store.Error)
	if json.Unmarshal(resp.Body, se) == nil && se.ErrorCode != 0 {
		if se.Index == 0 {
			se.Index = etcdIndex(resp.Header)
		}
		if resp.Header.Get(notAppliedHeader) == "true" {
			return notApplied{se: se}
		}
		return se
	}
	if se.Message != "" { // {"message":...}: the same field
		return &Error{Status: resp.StatusCode, Message: se.Message, Endpoint: resp.Endpoint}
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
	return &Error{Status: resp.StatusCode, Endpoint: resp.Endpoint,
		Message: fmt.Sprintf("HTTP %d from %s: %s", resp.StatusCode, resp.Endpoint, text)}
}

// notApplied is an error answer marked with notAppliedHeader: its text
// is the *store.Error's, and it wraps that and ErrNotApplied.
type notApplied struct{ se *store.Error }

func (e notApplied) Error() string   { return e.se.Error() }
func (e notApplied) Unwrap() []error { return []error{e.se, ErrNotApplied} }

// kindError is an error whose text is its own and that wraps the
// sentinels of its kind (and the error it explains, if any).
type kindError struct {
	msg   string
	kinds []error
}

func (e *kindError) Error() string   { return e.msg }
func (e *kindError) Unwrap() []error { return e.kinds }

func kinded(kinds []error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kinds: kinds}
}

// StatusCode is the HTTP status of an answer's error (a *store.Error or an
// *Error), 0 for any other error.
func StatusCode(err error) int {
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		return sc.StatusCode()
	}
	return 0
}

// explain turns a transport error from ep into one that says what failed,
// wrapping the sentinel of its kind.
func (c *Client) explain(ctx context.Context, ep string, err error) error {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ua):
		where := "the client's CA"
		if c.cfg.CAFile != "" {
			where = "a CA in " + c.cfg.CAFile
		}
		return kinded([]error{ErrUntrustedMember, err}, "the member's certificate is not signed by %s", where)
	case errors.As(err, &he):
		return fmt.Errorf("%v: use a host name or address that the member's certificate lists", he)
	case errors.As(err, &ci):
		return kinded([]error{ErrUntrustedMember, err}, "the member's certificate is not valid: %v", ci)
	case strings.Contains(err.Error(), "remote error: tls:"):
		return c.refused(remoteTLSError(err))
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return kinded([]error{ErrTimeout, err}, "no answer within %v", c.cfg.Timeout)
	case errors.As(err, &oe) && oe.Op == "dial":
		return oe
	}
	// With TLS 1.3 a member checks the client certificate after the client
	// has finished its handshake, so a refusal often surfaces as a closed
	// connection (broken pipe, reset, EOF) instead of the member's alert.
	// Ask once more, and wait for the alert this time.
	if alert, ok := c.refusesCertificate(ctx, ep); ok {
		return c.refused(alert)
	}
	return unwrapURLError(err)
}

func (c *Client) refused(alert string) error {
	cert := "the client certificate"
	if c.cfg.CertFile != "" {
		cert += " " + c.cfg.CertFile
	}
	return kinded([]error{ErrCertificateRefused}, "the member refused %s (%s): use one issued by the cluster's CA for client use", cert, alert)
}

// refusesCertificate reports whether the member at ep ends a TLS connection
// with an alert (such as "tls: unknown certificate authority") right after
// the handshake, before any request: what it does to a client certificate
// it does not accept.
func (c *Client) refusesCertificate(ctx context.Context, ep string) (alert string, ok bool) {
	u, err := url.Parse(ep)
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: c.cfg.TLS}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err == nil {
		defer conn.Close()
		// An accepting member waits for a request: the read times out.
		_ = conn.SetReadDeadline(time.Now().Add(min(c.cfg.Timeout, time.Second)))
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

// unwrapURLError drops net/http's `Get "https://…":` prefix: the client
// names the endpoint itself.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// PeerCertificate completes a TLS handshake with the member at ep and
// returns the certificate it serves.
func (c *Client) PeerCertificate(ctx context.Context, ep string) (*x509.Certificate, error) {
	u, err := url.Parse(ep)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: c.cfg.TLS}
	conn, err := d.DialContext(dctx, "tcp", u.Host)
	if err != nil {
		return nil, c.explain(ctx, ep, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("the member served no certificate")
	}
	return certs[0], nil
}
