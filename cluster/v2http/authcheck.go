package v2http

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth"
)

// Enforcement happens on the node the client reached, against that node's
// replica of the policy (a change made on another node applies here when
// this node applies it, normally within a heartbeat). A proposal forwarded
// to the leader is already authorized. The rules are tlsauth's
// (Policy.Principal); this file maps requests onto them:
//
//   - /v2/keys reads (GET, HEAD) need read on the key, writes (PUT, POST,
//     DELETE) write on it; with recursive=true, a prefix pattern covering
//     the key. Only the requested key is checked, as in etcd: a recursive
//     get of a directory the client may read lists everything below it.
//   - A watch needs read on the key; a recursive one needs read on
//     something at or below it, and then delivers only the events the
//     client may read (see watchVisible).
//   - Keys at or below internalPrefix (/_cairn: managed certificates and
//     their private keys, the policy, certmagic's locks) are node-only,
//     whatever the auth setting: any request naming one of them, with any
//     method, is refused to every other identity, root included. A
//     recursive get or watch of a parent (only "/": the prefix is top
//     level) never shows them, because the store hides keys whose name
//     starts with '_' from listings and recursive watches, as etcd does;
//     watchVisible drops them again for a non-node. A delete of "/" is
//     the store's error 107 (root is read only) for everyone.
//   - A snapshot (GET /cairn/v1/snapshot) holds those private keys: a node
//     identity, or root with authorization on (with it off, where every
//     certificate would be root, node identities only).
//   - The auth API needs root (GET /v2/auth/enable excepted); membership
//     changes (POST, PUT, DELETE /v2/members) need root; listing members,
//     /v2/machines, /v2/stats, /version, /health and /metrics are open,
//     as in etcd.
//
// A refusal changes nothing: /v2/keys answers etcd error 110 "Insufficient
// credentials" (HTTP 401, index 0), the other endpoints 401
// {"message":"Insufficient credentials"}.

// identityOf reads the identity of r's verified client certificate. ok is
// false without one (no TLS, or a connection that did not verify a
// certificate); err is set for a certificate whose identity is unreadable
// (another trust domain, a malformed SPIFFE URI, no CN).
func (h *Handler) identityOf(r *http.Request) (id tlsauth.Identity, ok bool, err error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return tlsauth.Identity{}, false, nil
	}
	c, _ := r.Context().Value(connIdentityKey{}).(*connIdentity)
	if c != nil {
		if v := c.v.Load(); v != nil {
			return v.id, v.err == nil, v.err
		}
	}
	id, err = tlsauth.PeerIdentity(*r.TLS, h.cfg.TrustDomain)
	if c != nil {
		c.v.Store(&identityResult{id: id, err: err})
	}
	return id, err == nil, err
}

// connIdentity holds the identity of a connection's client once a request
// has read it: the certificate of a connection never changes, and every
// request asks (isNode, the authorization check).
type connIdentity struct {
	v atomic.Pointer[identityResult]
}

type identityResult struct {
	id  tlsauth.Identity
	err error
}

type connIdentityKey struct{}

// ConnContext is the client port's http.Server.ConnContext: it gives each
// connection the place where its client's identity is kept.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connIdentityKey{}, &connIdentity{})
}

// identityName names the client of r in logs and rate limits: its
// identity string, else the ClientID (a certificate whose identity is
// unreadable, or no certificate).
func (h *Handler) identityName(r *http.Request) string {
	if id, ok, _ := h.identityOf(r); ok {
		return id.String()
	}
	return h.cfg.ClientID(r)
}

// isNode reports whether the client of r has a node identity (a node
// SPIFFE URI, or a CN allowed as a node's): only those may touch /_cairn.
func (h *Handler) isNode(r *http.Request) bool {
	id, ok, _ := h.identityOf(r)
	return ok && tlsauth.IsNode(id, h.cfg.AllowedNodeCNs)
}

// principal is what the client of r may do under this node's policy.
func (h *Handler) principal(r *http.Request) tlsauth.Principal {
	return h.principalOf(r, h.policy.get(h.cluster.Store()).pol)
}

// principalOf is what the client of r may do under pol. Without a
// certificate it is a guest (etcd's unauthenticated request); with a
// certificate whose identity is unreadable it may do nothing (etcd's wrong
// password).
func (h *Handler) principalOf(r *http.Request, pol *tlsauth.Policy) tlsauth.Principal {
	if !pol.Enabled {
		return pol.Anonymous() // everyone is root
	}
	id, ok, err := h.identityOf(r)
	switch {
	case err != nil:
		h.log.Debug("authorization: unreadable certificate identity", "client", h.cfg.ClientID(r), "err", err)
		return tlsauth.Principal{Name: h.cfg.ClientID(r)}
	case !ok:
		return pol.Anonymous()
	}
	return pol.Principal(id, h.cfg.AllowedNodeCNs)
}

// isInternal reports whether key is at or below internalPrefix.
func isInternal(key string) bool {
	return key == internalPrefix || strings.HasPrefix(key, internalPrefix+"/")
}

// authorizeKey reports whether pr, a node identity when node is set, may
// make the /v2/keys request kr.
func authorizeKey(pr tlsauth.Principal, node bool, method string, kr *keyRequest) bool {
	if isInternal(kr.Path) {
		return node
	}
	if pr.Root() {
		return true
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		if kr.wait {
			return pr.CanWatch(kr.Path, kr.Recursive)
		}
		return pr.CanRead(kr.Path, kr.Recursive)
	}
	return pr.CanWrite(kr.Path, kr.Recursive)
}

// refuseKey answers a /v2/keys request outside the client's permissions:
// etcd's writeKeyNoAuth.
func (h *Handler) refuseKey(w http.ResponseWriter, r *http.Request, pr tlsauth.Principal, kr *keyRequest) {
	// Debug: a client retrying in a loop must not flood the log.
	h.log.Debug("authorization: request refused", "identity", pr.Name, "guest", pr.Guest, "method", r.Method, "key", kr.Path, "recursive", kr.Recursive, "wait", kr.wait)
	h.writeKeyError(w, r, requestError(store.EcodeUnauthorized, "Insufficient credentials"))
}

// watchVisible reports whether a watch of pr may deliver ev: an event about
// a key pr may read, or the removal of a directory below which pr may read
// something. Cairn's internal keys are never delivered to anyone but a node
// identity (node set).
func watchVisible(pr tlsauth.Principal, node bool, ev *store.Event) bool {
	if ev.Node == nil {
		return pr.Root()
	}
	if isInternal(ev.Node.Key) {
		return node
	}
	if pr.Root() {
		return true
	}
	dirRemoved := (ev.Action == store.ActionDelete || ev.Action == store.ActionExpire) && ev.PrevNode != nil && ev.PrevNode.Dir
	return pr.CanSee(ev.Node.Key, dirRemoved)
}

// KeyFilter returns what the client of a TLS connection cs may see of the
// registrations, for DNS over TLS and over HTTPS: nil (everything) while
// authorization is off or for root, else a predicate accepting the keys
// its principal may see in a recursive watch (watchVisible: CanRead of the
// key itself). A connection without a verified certificate is a guest.
// The policy is this node's replica's at the time of the call.
func (h *Handler) KeyFilter(cs *tls.ConnectionState) func(key string) bool {
	r := &http.Request{TLS: cs, RemoteAddr: "dns"}
	pr := h.principal(r)
	if pr.Root() {
		return nil
	}
	node := h.isNode(r)
	return func(key string) bool {
		return watchVisible(pr, node, &store.Event{Action: store.ActionSet, Node: &store.NodeExtern{Key: key}})
	}
}
