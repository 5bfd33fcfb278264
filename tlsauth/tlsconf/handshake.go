package tlsconf

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// Reasons a handshake is refused, the values of the reason label of
// cairn_tls_handshake_failures_total. The set is fixed: HandshakeReason
// maps every error to one of them.
const (
	ReasonNoCertificate = "no_certificate" // the client sent no certificate
	ReasonUnknownCA     = "unknown_ca"     // the certificate does not chain to the CA
	ReasonExpired       = "expired"        // outside its validity period
	ReasonKeyUsage      = "key_usage"      // no clientAuth extended key usage (or no extension)
	ReasonIdentity      = "identity"       // no identity, another trust domain, not a node
	ReasonRevoked       = "revoked"        // listed in a CRL
	ReasonProtocol      = "protocol"       // TLS version, cipher suite or ALPN
	ReasonNotTLS        = "not_tls"        // the client does not speak TLS
	ReasonOther         = "other"          // timeouts, resets, anything else
)

// HandshakeReasons is every reason, in a fixed order.
var HandshakeReasons = []string{ReasonNoCertificate, ReasonUnknownCA, ReasonExpired, ReasonKeyUsage,
	ReasonIdentity, ReasonRevoked, ReasonProtocol, ReasonNotTLS, ReasonOther}

// HandshakeReason classifies a refused handshake. Errors of this module
// are matched with errors.Is; the others (crypto/tls, crypto/x509, and the
// text net/http logs) by their message.
func HandshakeReason(err error) string {
	switch {
	case err == nil:
		return ReasonOther
	case errors.Is(err, ErrRevoked):
		return ReasonRevoked
	case errors.Is(err, tlsauth.ErrNoClientAuth):
		return ReasonKeyUsage
	case errors.Is(err, tlsauth.ErrNoIdentity), errors.Is(err, tlsauth.ErrForeignTrustDomain),
		errors.Is(err, tlsauth.ErrInvalidIdentity), errors.Is(err, ErrNotNode), errors.Is(err, tlsauth.ErrNoVerifiedPeer):
		return ReasonIdentity
	}
	msg := err.Error()
	for _, r := range reasonTexts {
		for _, text := range r.texts {
			if strings.Contains(msg, text) {
				return r.reason
			}
		}
	}
	return ReasonOther
}

// reasonTexts are checked in order; the first text found decides.
var reasonTexts = []struct {
	reason string
	texts  []string
}{
	{ReasonRevoked, []string{"certificate revoked"}},
	{ReasonKeyUsage, []string{"lacks the clientAuth", "incompatible key usage"}},
	{ReasonIdentity, []string{"has no identity", "another trust domain", "malformed SPIFFE", "is not a node"}},
	{ReasonNoCertificate, []string{"didn't provide a certificate"}},
	{ReasonUnknownCA, []string{"unknown authority"}},
	{ReasonExpired, []string{"expired or is not yet valid"}},
	{ReasonNotTLS, []string{"did not start a TLS handshake", "does not look like a TLS handshake", "first record does not look like"}},
	{ReasonProtocol, []string{"unsupported versions", "protocol version", "no cipher suite", "application protocol", "no mutual"}},
}

// HandshakeLog counts and logs refused handshakes. Every refusal is
// counted; lines are rate limited per port and reason: at most Burst
// lines per Every, and the next line logged says how many were
// suppressed since the last. So a flood of bad handshakes cannot grow the
// log faster than len(HandshakeReasons)*Burst lines per Every per port.
// Set the fields before the first Refused; the zero value of each is its
// default.
type HandshakeLog struct {
	Logger *slog.Logger              // nil discards lines
	Count  func(port, reason string) // called for every refusal; may be nil
	Now    func() time.Time          // nil: time.Now (tests pass a fake clock)
	Every  time.Duration             // 0: 10s
	Burst  int                       // 0: 2

	mu    sync.Mutex
	state map[[2]string]*limit
}

type limit struct {
	start      time.Time // of the current window
	logged     int       // lines in the current window
	suppressed int       // refusals not logged since the last line
}

// Refused records a handshake from remote on port ("client" or "peer")
// refused with err.
func (h *HandshakeLog) Refused(port, remote string, err error) {
	reason := HandshakeReason(err)
	if h.Count != nil {
		h.Count(port, reason)
	}
	suppressed, ok := h.admit(port, reason)
	if !ok || h.Logger == nil {
		return
	}
	attrs := []slog.Attr{slog.String("remote", remote), slog.String("reason", reason), slog.Any("err", err)}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	h.Logger.LogAttrs(context.Background(), slog.LevelWarn, port+" port: refused connection", attrs...)
}

// admit reports whether a line may be written for (port, reason) now,
// and how many refusals were not logged before it.
func (h *HandshakeLog) admit(port, reason string) (suppressed int, ok bool) {
	now, every, burst := time.Now, h.Every, h.Burst
	if h.Now != nil {
		now = h.Now
	}
	if every <= 0 {
		every = 10 * time.Second
	}
	if burst <= 0 {
		burst = 2
	}
	t := now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == nil {
		h.state = make(map[[2]string]*limit)
	}
	key := [2]string{port, reason}
	l := h.state[key]
	if l == nil {
		l = &limit{start: t}
		h.state[key] = l
	}
	if t.Sub(l.start) >= every || t.Before(l.start) {
		l.start, l.logged = t, 0
	}
	if l.logged >= burst {
		l.suppressed++
		return 0, false
	}
	l.logged++
	suppressed, l.suppressed = l.suppressed, 0
	return suppressed, true
}

// HTTPErrorLog returns a writer for an http.Server's ErrorLog (through
// log.New(w, "", 0)): net/http's "http: TLS handshake error from <addr>:
// <err>" lines go to Refused on the client port; every other line is
// written to next at WARN.
func (h *HandshakeLog) HTTPErrorLog(next *slog.Logger) io.Writer {
	return &httpErrorLog{h: h, next: next}
}

type httpErrorLog struct {
	h    *HandshakeLog
	next *slog.Logger
}

const httpHandshakePrefix = "http: TLS handshake error from "

func (w *httpErrorLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	if rest, ok := strings.CutPrefix(line, httpHandshakePrefix); ok {
		remote, msg, _ := strings.Cut(rest, ": ")
		w.h.Refused("client", remote, errors.New(msg))
		return len(p), nil
	}
	if w.next != nil {
		w.next.Warn(line)
	}
	return len(p), nil
}
