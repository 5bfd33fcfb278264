package bootstrap

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// Member is the member being bootstrapped.
type Member struct {
	ID       uint64 // cluster member ID, registered in hex
	Name     string // --name
	PeerAddr string // advertised peer host:port
}

func (m Member) key() string   { return strconv.FormatUint(m.ID, 16) }
func (m Member) value() string { return m.Name + "=https://" + m.PeerAddr }

// Token is the member side of the discovery protocol.
type Token struct {
	// URL is the token's URL: https://host:port/v2/keys/<prefix>/<token>.
	URL string
	// TLS presents the member's certificate and verifies the discovery
	// cluster's.
	TLS *tls.Config
	// Timeout bounds one request (default v2client.DefaultTimeout).
	Timeout time.Duration
	// Retry is the first pause after the discovery cluster did not answer;
	// it doubles up to 10 s (default 500 ms).
	Retry time.Duration
	// Logger receives progress (nil: discarded).
	Logger *slog.Logger
}

// FullError refuses a member beyond a token's size.
type FullError struct {
	URL     string
	Size    int
	Members []Entry // the first Size entries: the founding members
}

func (e *FullError) Error() string {
	names := make([]string, len(e.Members))
	for i, m := range e.Members {
		names[i] = m.Name + " " + m.PeerAddr
	}
	return fmt.Sprintf("discovery: the token %s is full: its %d members (%s) registered before this one, which is not one of them. "+
		"To add this member to the cluster they formed, start it with an empty data dir and --peers %s instead of --discovery; "+
		"for a new cluster, make a new token (cairn discovery new --size N)",
		e.URL, e.Size, strings.Join(names, ", "), strings.Join(peerAddrs(e.Members), ","))
}

// Entry is one member registered at a token.
type Entry struct {
	Key      string // the member ID in hex
	Name     string
	PeerAddr string // host:port
	Created  uint64 // createdIndex
}

// Peers registers m at the token and waits until the token's size of
// members registered; it returns the peer addresses of the founding
// members, m's own excluded (none for a token of size 1). It returns a
// *FullError when m is not among them.
func (t Token) Peers(ctx context.Context, m Member) ([]string, error) {
	ep, dir, err := ParseURL(t.URL)
	if err != nil {
		return nil, err
	}
	if t.Timeout <= 0 {
		t.Timeout = v2client.DefaultTimeout
	}
	if t.Retry <= 0 {
		t.Retry = 500 * time.Millisecond
	}
	if t.Logger == nil {
		t.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := v2client.New(v2client.Config{Endpoints: []string{ep}, TLS: t.TLS, Timeout: t.Timeout})
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer c.Close()
	s := &session{t: t, c: c, dir: dir, m: m}

	// A token already full refuses this member before it registers.
	st, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := st.founders(s); err != nil {
		return nil, err
	}
	if err := s.register(ctx); err != nil {
		return nil, err
	}
	for {
		if st, err = s.read(ctx); err != nil {
			return nil, err
		}
		if len(st.entries) >= st.size {
			founders, err := st.founders(s)
			var full *FullError
			if errors.As(err, &full) {
				s.unregister()
			}
			if err != nil {
				return nil, err
			}
			t.Logger.Info("discovery: the founding members registered", "url", t.URL, "members", len(founders))
			var peers []string
			for _, e := range founders {
				if e.Key != m.key() {
					peers = append(peers, e.PeerAddr)
				}
			}
			return peers, nil
		}
		t.Logger.Info("discovery: waiting for members to register", "url", t.URL, "registered", len(st.entries), "size", st.size)
		if err := s.wait(ctx, st.index); err != nil {
			return nil, err
		}
	}
}

// session is one member's run of the protocol.
type session struct {
	t   Token
	c   *v2client.Client
	dir string
	m   Member
}

// state is what one read of the token found.
type state struct {
	size    int
	entries []Entry // by createdIndex
	index   uint64  // the store index of the read
}

// founders are the first size entries when the token is full, nil while
// it is not; a *FullError when m is not among them.
func (st state) founders(s *session) ([]Entry, error) {
	if len(st.entries) < st.size {
		return nil, nil
	}
	first := st.entries[:st.size]
	if slices.ContainsFunc(first, func(e Entry) bool { return e.Key == s.m.key() }) {
		return first, nil
	}
	return nil, &FullError{URL: s.t.URL, Size: st.size, Members: first}
}

// read reads the token's size and entries, retrying while the discovery
// cluster does not answer.
func (s *session) read(ctx context.Context) (state, error) {
	var st state
	err := s.retry(ctx, "read the token", func() error {
		ev, err := s.c.Get(ctx, path.Join(s.dir, sizeKey), v2client.GetOptions{})
		if err != nil {
			if isCode(err, store.EcodeKeyNotFound) {
				return permanent(fmt.Errorf("discovery: the token %s has no %s: it does not exist (make one with cairn discovery new --size N) or the URL is wrong", s.t.URL, sizeKey))
			}
			return err
		}
		size, err := strconv.Atoi(value(ev.Node))
		if err != nil || size < 1 {
			return permanent(fmt.Errorf("discovery: the token %s has size %q, not a number of members (1 or more)", s.t.URL, value(ev.Node)))
		}
		ev, err = s.c.Get(ctx, s.dir, v2client.GetOptions{})
		if err != nil {
			return err
		}
		st = state{size: size, index: ev.EtcdIndex}
		for _, n := range ev.Node.Nodes {
			base := path.Base(n.Key)
			if n.Dir || strings.HasPrefix(base, "_") {
				continue
			}
			e, ok := parseEntry(base, value(n), n.CreatedIndex)
			if !ok {
				s.t.Logger.Warn("discovery: skipping an entry that is not <name>=<peer URL>", "key", n.Key, "value", value(n))
				continue
			}
			st.entries = append(st.entries, e)
		}
		slices.SortFunc(st.entries, func(a, b Entry) int { return cmp.Compare(a.Created, b.Created) })
		return nil
	})
	return st, err
}

// register writes m's entry, once: an entry of m's left by an earlier
// start of it is taken as it is.
func (s *session) register(ctx context.Context) error {
	key := path.Join(s.dir, s.m.key())
	return s.retry(ctx, "register", func() error {
		_, err := s.c.Set(ctx, key, s.m.value(), v2client.SetOptions{PrevExist: v2client.PrevNoExist})
		if err == nil {
			s.t.Logger.Info("discovery: registered", "url", s.t.URL, "key", s.m.key(), "value", s.m.value())
			return nil
		}
		if !isCode(err, store.EcodeNodeExist) {
			return err
		}
		ev, gerr := s.c.Get(ctx, key, v2client.GetOptions{})
		if gerr != nil {
			return gerr
		}
		if v := value(ev.Node); v != s.m.value() {
			return permanent(fmt.Errorf("discovery: the token %s has member ID %s registered as %q, not %q: another member has this ID (a copied data dir?), or this one changed its name or peer address; start it with an empty data dir",
				s.t.URL, s.m.key(), v, s.m.value()))
		}
		s.t.Logger.Info("discovery: registered already (an earlier start)", "url", s.t.URL, "key", s.m.key())
		return nil
	})
}

// unregister removes m's entry (best effort): a member refused as one too
// many leaves the token as it found it.
func (s *session) unregister() {
	ctx, cancel := context.WithTimeout(context.Background(), s.t.Timeout)
	defer cancel()
	if _, err := s.c.CompareAndDelete(ctx, path.Join(s.dir, s.m.key()), s.m.value()); err != nil {
		s.t.Logger.Warn("discovery: could not remove this member's entry", "err", err)
	}
}

// wait returns after the first change below the token after index.
func (s *session) wait(ctx context.Context, index uint64) error {
	w := s.c.Watch(s.dir, v2client.WatchOptions{AfterIndex: index, Recursive: true})
	defer w.Close()
	return s.retry(ctx, "watch the token", func() error {
		_, err := w.Next(ctx)
		if isCode(err, store.EcodeEventIndexCleared) {
			return nil // history moved on: read again
		}
		return err
	})
}

// retry runs f until it succeeds, fails for good or ctx ends; it pauses
// with backoff after answers that may change: no answer, an election.
func (s *session) retry(ctx context.Context, what string, f func() error) error {
	backoff := s.t.Retry
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p *permanentError
		if errors.As(err, &p) {
			return p.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("discovery: %s at %s: %w", what, s.t.URL, ctx.Err())
		}
		if !transient(err) {
			return fmt.Errorf("discovery: %s at %s: %w", what, s.t.URL, err)
		}
		s.t.Logger.Warn("discovery: the discovery cluster did not answer; retrying", "what", what, "url", s.t.URL, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("discovery: %s at %s: %w (last: %v)", what, s.t.URL, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// transient reports whether err may go away: the discovery cluster did
// not answer, or answered with a server-side error (an election).
func transient(err error) bool {
	if errors.Is(err, v2client.ErrUntrustedMember) || errors.Is(err, v2client.ErrCertificateRefused) {
		return false
	}
	var se *store.Error
	if errors.As(err, &se) {
		return se.ErrorCode >= 300 && se.ErrorCode < 400
	}
	var ve *v2client.Error
	if errors.As(err, &ve) {
		return ve.Status >= 500
	}
	return true
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }

func permanent(err error) error { return &permanentError{err} }

func isCode(err error, code int) bool {
	var se *store.Error
	return errors.As(err, &se) && se.ErrorCode == code
}

func value(n *store.NodeExtern) string {
	if n == nil || n.Value == nil {
		return ""
	}
	return *n.Value
}

// parseEntry reads "<name>=<peer URL>[,...]" (etcd 2.x joins several
// with '&'; the first URL is taken, as cluster.peerAddrOf does).
func parseEntry(key, val string, created uint64) (Entry, bool) {
	first, _, _ := strings.Cut(val, "&")
	name, raw, ok := strings.Cut(first, "=")
	if !ok {
		return Entry{}, false
	}
	raw, _, _ = strings.Cut(raw, ",")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Entry{}, false
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return Entry{}, false
	}
	return Entry{Key: key, Name: name, PeerAddr: u.Host, Created: created}, true
}

func peerAddrs(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.PeerAddr
	}
	return out
}
