package v2http

import (
	"crypto/tls"
	"net/http"

	"github.com/cairnkv/cairn/cluster/v2http/dashboard"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/tlsauth"
)

// DashboardConfig is what the dashboard at /mod/dashboard/ needs beyond
// the handler's Cluster (package dashboard).
type DashboardConfig struct {
	// Discovery is the registrations' layout the Services view lists.
	Discovery discovery.Config
	// MemberTLS is this member's client TLS configuration (its own
	// certificate, the cluster CA) for probing the other members' /health
	// and serving certificates; nil: they are not probed.
	MemberTLS func() *tls.Config
}

// serveDashboard serves the requests dashboard.Owns and reports whether r
// was one. The dashboard is stateless: a Handler per request costs a
// struct.
func (h *Handler) serveDashboard(w http.ResponseWriter, r *http.Request) bool {
	if !dashboard.Owns(r) {
		return false
	}
	dashboard.New(dashboard.Config{
		Cluster: h.cluster, Discovery: h.cfg.Dashboard.Discovery, MemberTLS: h.cfg.Dashboard.MemberTLS,
		Whoami: h.whoami, Logger: h.log,
	}).ServeHTTP(w, r)
	return true
}

// whoami is what the client of r may do on keys, decided by the keys
// API's own authorization (principal, authorizeKey).
func (h *Handler) whoami(r *http.Request, keys []string) dashboard.Identity {
	pol := h.policy.get(h.cluster.Store()).pol // before the index: a policy change after it shows as an event
	pr := h.principalOf(r, pol)
	node := h.isNode(r)
	st := h.cluster.Store()
	out := dashboard.Identity{Name: pr.Name, Node: node, AuthEnabled: pol.Enabled, Root: pr.Root(), Guest: pr.Guest, Index: st.Index()}
	if id, ok, _ := h.identityOf(r); ok {
		out.Name = id.String()
	}
	if pol.Enabled {
		roles := pol.Users[out.Name]
		if pr.Guest {
			roles = []string{tlsauth.GuestRole}
		}
		for _, name := range roles {
			role := dashboard.Role{Name: name, Read: []string{}, Write: []string{}}
			if perms, ok := pol.Roles[name]; ok {
				role.Read, role.Write = nonNil(perms.Read), nonNil(perms.Write)
			}
			out.Roles = append(out.Roles, role)
		}
	}
	for _, k := range keys {
		ask := func(method string, recursive bool) bool {
			kr := &keyRequest{}
			kr.Path, kr.Recursive = k, recursive
			return authorizeKey(pr, node, method, kr)
		}
		ka := dashboard.KeyAccess{
			Key: k, Read: ask(http.MethodGet, false), ReadRecursive: ask(http.MethodGet, true),
			Write: ask(http.MethodPut, false),
		}
		switch {
		case k == "/":
			ka.Exists = true
		case ka.Read:
			// A local read: the page's next GET is served by this member
			// too.
			_, err := st.Get(k, false, false, h.cfg.Now())
			ka.Exists = err == nil
		}
		out.Keys = append(out.Keys, ka)
	}
	return out
}
