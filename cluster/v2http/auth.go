package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/cairnkv/cairn/tlsauth"
)

// Paths of the auth API.
const (
	authPrefix     = "/v2/auth"
	authEnablePath = authPrefix + "/enable"
	authUsersPath  = authPrefix + "/users"
	authRolesPath  = authPrefix + "/roles"
)

// The auth API is etcd 2.3's (etcdhttp/client_auth.go, etcdserver/auth):
// the same paths, JSON shapes, status codes and messages, where a user is a
// certificate identity ("client/web", "node/n1", or a CN) and has no
// password. Every endpoint needs root while authorization is enabled,
// except GET /v2/auth/enable; a refusal is 401 {"message":"Insufficient
// credentials"} without X-Etcd-Cluster-ID, as in etcd. Other errors are
// {"message":"auth: ..."} with etcd's status. Changes are proposed through
// raft (see updatePolicy); reads are linearizable.
//
// Deviations: a "password" is refused (400); a user or role named in
// "roles" or "grant" must exist (404), where etcd stored dangling names;
// creating a user always answers 201 (etcd answers 200 when the body has
// roles); empty lists are [] (etcd sent null for some).

// roleJSON is etcd's auth.Role.
type roleJSON struct {
	Role        string           `json:"role"`
	Permissions permissionsJSON  `json:"permissions"`
	Grant       *permissionsJSON `json:"grant,omitempty"`
	Revoke      *permissionsJSON `json:"revoke,omitempty"`
}

// permissionsJSON is etcd's auth.Permissions.
type permissionsJSON struct {
	KV tlsauth.Permissions `json:"kv"`
}

func (p *permissionsJSON) isEmpty() bool {
	return p == nil || (len(p.KV.Read) == 0 && len(p.KV.Write) == 0)
}

// userJSON is etcd's auth.User. Password is only read, to refuse it.
type userJSON struct {
	User     string   `json:"user"`
	Password *string  `json:"password,omitempty"`
	Roles    []string `json:"roles"`
	Grant    []string `json:"grant,omitempty"`
	Revoke   []string `json:"revoke,omitempty"`
}

// userWithRoles is etcd 2.3's answer to GET on a user and on the list:
// the roles in full.
type userWithRoles struct {
	User  string     `json:"user"`
	Roles []roleJSON `json:"roles,omitempty"`
}

var rootRoleJSON = roleJSON{Role: tlsauth.RootRole, Permissions: permissionsJSON{KV: tlsauth.AllKeys()}}

func newRoleJSON(name string, rw tlsauth.Permissions) roleJSON {
	return roleJSON{Role: name, Permissions: permissionsJSON{KV: tlsauth.Permissions{
		Read: nonNil(rw.Read), Write: nonNil(rw.Write),
	}}}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// errNoAuth is a change refused because the client is not root under the
// policy it was about to change.
var errNoAuth = errors.New("v2http: insufficient credentials")

// serveAuth serves /v2/auth/...; it reports false for a path it does not
// know (404).
func (h *Handler) serveAuth(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == authEnablePath:
		h.serveAuthEnable(w, r)
	case p == authUsersPath || p == authUsersPath+"/":
		h.serveUsers(w, r)
	case strings.HasPrefix(p, authUsersPath+"/"):
		// A user name holds a '/' ("client/web"): everything after
		// /users/ is the name, a trailing slash aside.
		name := strings.TrimSuffix(strings.TrimPrefix(p, authUsersPath+"/"), "/")
		if err := tlsauth.ValidateUser(name); err != nil {
			writeHTTPError(w, r, http.StatusBadRequest, "Invalid path: "+trimPkg(err))
			return true
		}
		h.serveUser(w, r, name)
	case p == authRolesPath || p == authRolesPath+"/":
		h.serveRoles(w, r)
	case strings.HasPrefix(p, authRolesPath+"/"):
		name := strings.TrimSuffix(strings.TrimPrefix(p, authRolesPath+"/"), "/")
		if strings.Contains(name, "/") {
			writeHTTPError(w, r, http.StatusBadRequest, "Invalid path")
			return true
		}
		if err := tlsauth.ValidateRole(name); err != nil {
			writeHTTPError(w, r, http.StatusBadRequest, "Invalid path: "+trimPkg(err))
			return true
		}
		h.serveRole(w, r, name)
	default:
		return false
	}
	return true
}

// authPreamble is etcd's order of checks for the auth endpoints: the
// method, then root (write methods only when writesOnly), then the
// headers of every answer that follows.
func (h *Handler) authPreamble(w http.ResponseWriter, r *http.Request, writesOnly bool, methods ...string) bool {
	if !allowMethod(w, r.Method, methods...) {
		return false
	}
	if !(writesOnly && r.Method == http.MethodGet) && !h.principal(r).Root() {
		h.writeNoAuth(w, r)
		return false
	}
	w.Header().Set("X-Etcd-Cluster-ID", hexID(h.cluster.Status().ClusterID))
	w.Header().Set("Content-Type", "application/json")
	return true
}

// readPolicy returns the policy after a read barrier.
func (h *Handler) readPolicy(ctx context.Context) (*policyDoc, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	if err := h.cluster.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	cur := h.policy.get(h.cluster.Store())
	if cur.err != nil {
		return nil, errPolicyUnreadable(cur.err)
	}
	return cur.doc, nil
}

// changePolicy is updatePolicy for the client of r, who must be root
// under the policy being changed (the check before it ran on this node's
// replica, which may lag behind a change made on another node).
func (h *Handler) changePolicy(r *http.Request, change func(d *policyDoc) error) (*policyDoc, error) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	return h.updatePolicy(ctx, func(d *policyDoc) error {
		if !h.principalOf(r, d.policy()).Root() {
			return errNoAuth
		}
		return change(d)
	})
}

// writeAuthError answers a failed auth API request as etcd's writeError.
func (h *Handler) writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *authError
	switch {
	case errors.Is(err, errNoAuth):
		w.Header().Del("X-Etcd-Cluster-ID")
		h.writeNoAuth(w, r)
	case errors.As(err, &ae):
		writeHTTPError(w, r, ae.status, ae.msg)
	default:
		h.log.Warn("auth request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeHTTPError(w, r, http.StatusInternalServerError, "Internal Server Error")
	}
}

// writeNoAuth is etcd's writeNoAuth: 401 {"message":"Insufficient credentials"}.
func (h *Handler) writeNoAuth(w http.ResponseWriter, r *http.Request) {
	writeHTTPError(w, r, http.StatusUnauthorized, "Insufficient credentials")
}

// writeEmpty is etcd's answer to a successful DELETE or PUT /enable: the
// status and the headers already set, no body.
func writeEmpty(w http.ResponseWriter, r *http.Request) {
	writeBody(w, r, http.StatusOK, "", nil)
}

// decodeAuthBody reads a JSON request body into v, bounded by
// MaxRequestBytes. etcd reads the first JSON value and ignores the rest.
func (h *Handler) decodeAuthBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(unwrap(w), r.Body, h.cfg.MaxRequestBytes))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeHTTPError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the limit of %d bytes", mbe.Limit))
			return false
		}
		writeHTTPError(w, r, http.StatusBadRequest, "Invalid JSON in request body.")
		return false
	}
	return true
}

type enabledJSON struct {
	Enabled bool `json:"enabled"`
}

// serveAuthEnable is etcd's enableDisable: GET (open to everyone) reports
// whether authorization is on; PUT turns it on, which needs a user with
// the root role and creates the guest role with full access when there is
// none; DELETE turns it off.
func (h *Handler) serveAuthEnable(w http.ResponseWriter, r *http.Request) {
	if !h.authPreamble(w, r, true, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	switch r.Method {
	case http.MethodGet:
		d, err := h.readPolicy(r.Context())
		if err != nil {
			var ae *authError
			if !errors.As(err, &ae) {
				h.writeAuthError(w, r, err)
				return
			}
			d = &policyDoc{Policy: tlsauth.Policy{Enabled: true}} // unreadable: enforced as enabled
		}
		writeJSON(w, r, http.StatusOK, enabledJSON{Enabled: d.Enabled})
	case http.MethodPut:
		_, err := h.changePolicy(r, func(d *policyDoc) error {
			if d.Enabled {
				return authErr(http.StatusConflict, "already enabled")
			}
			if !d.policy().HasRootUser() {
				return authErr(http.StatusConflict, "No root user available, please create one: a user (certificate identity) with the root role, e.g. PUT /v2/auth/users/client/root {\"user\":\"client/root\",\"roles\":[\"root\"]}")
			}
			if _, ok := d.Roles[tlsauth.GuestRole]; !ok {
				d.Roles[tlsauth.GuestRole] = tlsauth.AllKeys()
			}
			d.Enabled = true
			return nil
		})
		if err != nil {
			h.writeAuthError(w, r, err)
			return
		}
		h.log.Info("authorization enabled", "by", h.identityName(r))
		writeEmpty(w, r)
	case http.MethodDelete:
		_, err := h.changePolicy(r, func(d *policyDoc) error {
			if !d.Enabled {
				return authErr(http.StatusConflict, "already disabled")
			}
			d.Enabled = false
			return nil
		})
		if err != nil {
			h.writeAuthError(w, r, err)
			return
		}
		h.log.Info("authorization disabled", "by", h.identityName(r))
		writeEmpty(w, r)
	}
}

// rolesOf returns the roles of a user in full, skipping names that are
// not (or no longer) roles, as etcd's list does.
func rolesOf(d *policyDoc, names []string) []roleJSON {
	var out []roleJSON
	for _, n := range names {
		if n == tlsauth.RootRole {
			out = append(out, rootRoleJSON)
		} else if rw, ok := d.Roles[n]; ok {
			out = append(out, newRoleJSON(n, rw))
		}
	}
	return out
}

// serveUsers is etcd's baseUsers: every user with its roles in full.
func (h *Handler) serveUsers(w http.ResponseWriter, r *http.Request) {
	if !h.authPreamble(w, r, false, http.MethodGet) {
		return
	}
	d, err := h.readPolicy(r.Context())
	if err != nil {
		h.writeAuthError(w, r, err)
		return
	}
	list := struct {
		Users []userWithRoles `json:"users"`
	}{Users: []userWithRoles{}}
	for _, u := range slices.Sorted(maps.Keys(d.Users)) {
		list.Users = append(list.Users, userWithRoles{User: u, Roles: rolesOf(d, d.Users[u])})
	}
	writeJSON(w, r, http.StatusOK, list)
}

// serveUser is etcd's forUser.
func (h *Handler) serveUser(w http.ResponseWriter, r *http.Request, name string) {
	if !h.authPreamble(w, r, false, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	switch r.Method {
	case http.MethodGet:
		d, err := h.readPolicy(r.Context())
		if err != nil {
			h.writeAuthError(w, r, err)
			return
		}
		roles, ok := d.Users[name]
		if !ok {
			h.writeAuthError(w, r, authErr(http.StatusNotFound, "User %s does not exist.", name))
			return
		}
		writeJSON(w, r, http.StatusOK, userWithRoles{User: name, Roles: rolesOf(d, roles)})
	case http.MethodPut:
		h.putUser(w, r, name)
	case http.MethodDelete:
		_, err := h.changePolicy(r, func(d *policyDoc) error {
			if _, ok := d.Users[name]; !ok {
				return authErr(http.StatusNotFound, "User %s does not exist", name)
			}
			delete(d.Users, name)
			if d.Enabled && !d.policy().HasRootUser() {
				return authErr(http.StatusForbidden, "Cannot delete %s, the last user with the root role, while auth is enabled.", name)
			}
			return nil
		})
		if err != nil {
			h.writeAuthError(w, r, err)
			return
		}
		writeEmpty(w, r)
	}
}

// putUser creates a user (with "roles", or none) or changes its roles
// ("grant", "revoke"), following etcd's CreateUser, CreateOrUpdateUser and
// UpdateUser.
func (h *Handler) putUser(w http.ResponseWriter, r *http.Request, name string) {
	var in userJSON
	if !h.decodeAuthBody(w, r, &in) {
		return
	}
	if in.Password != nil {
		writeHTTPError(w, r, http.StatusBadRequest, "Passwords are not supported: a Cairn user is a certificate identity "+
			"(client/<name>, node/<name>, or the CN of a certificate without a SPIFFE URI SAN), authenticated by its TLS client certificate. Leave out \"password\".")
		return
	}
	if in.User != name {
		writeHTTPError(w, r, http.StatusBadRequest, "User JSON name does not match the name in the URL")
		return
	}
	update := len(in.Grant) != 0 || len(in.Revoke) != 0
	if update && len(in.Roles) != 0 {
		writeHTTPError(w, r, http.StatusBadRequest, "User JSON contains both roles and grant/revoke")
		return
	}
	for _, role := range slices.Concat(in.Roles, in.Grant, in.Revoke) {
		if err := tlsauth.ValidateRole(role); err != nil {
			h.writeAuthError(w, r, authErr(http.StatusBadRequest, "%s", trimPkg(err)))
			return
		}
	}
	created := false
	d, err := h.changePolicy(r, func(d *policyDoc) error {
		old, exists := d.Users[name]
		if !update {
			switch {
			case exists && len(in.Roles) != 0:
				return authErr(http.StatusConflict, "User %s already exists.", name)
			case exists:
				return authErr(http.StatusBadRequest, "User not updated. Use grant/revoke to update the user.")
			}
			if err := rolesExist(d, in.Roles); err != nil {
				return err
			}
			d.Users[name], created = sortedSet(in.Roles), true
			return nil
		}
		if !exists {
			return authErr(http.StatusNotFound, "User %s does not exist.", name)
		}
		roles := slices.Clone(old)
		for _, g := range in.Grant {
			if slices.Contains(roles, g) {
				return authErr(http.StatusConflict, "Granting duplicate role %s for user %s", g, name)
			}
			roles = append(roles, g)
		}
		if err := rolesExist(d, in.Grant); err != nil {
			return err
		}
		for _, rv := range in.Revoke {
			if !slices.Contains(roles, rv) {
				return authErr(http.StatusConflict, "Revoking ungranted role %s for user %s", rv, name)
			}
			roles = without(roles, []string{rv})
		}
		roles = sortedSet(roles)
		if slices.Equal(roles, old) {
			return authErr(http.StatusBadRequest, "User not updated. Use grant/revoke to update the user.")
		}
		d.Users[name] = roles
		if d.Enabled && !d.policy().HasRootUser() {
			return authErr(http.StatusForbidden, "Cannot revoke the root role from %s, the last user holding it, while auth is enabled.", name)
		}
		return nil
	})
	if err != nil {
		h.writeAuthError(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, r, code, userJSON{User: name, Roles: nonNil(d.Users[name])})
}

// rolesExist refuses a grant of a role that does not exist.
func rolesExist(d *policyDoc, roles []string) error {
	for _, role := range roles {
		if _, ok := d.Roles[role]; !ok && role != tlsauth.RootRole {
			return authErr(http.StatusNotFound, "Role %s does not exist.", role)
		}
	}
	return nil
}

// serveRoles is etcd's baseRoles: every role in full, root included.
func (h *Handler) serveRoles(w http.ResponseWriter, r *http.Request) {
	if !h.authPreamble(w, r, false, http.MethodGet) {
		return
	}
	d, err := h.readPolicy(r.Context())
	if err != nil {
		h.writeAuthError(w, r, err)
		return
	}
	names := append(slices.Collect(maps.Keys(d.Roles)), tlsauth.RootRole)
	slices.Sort(names)
	list := struct {
		Roles []roleJSON `json:"roles"`
	}{Roles: []roleJSON{}}
	list.Roles = append(list.Roles, rolesOf(d, names)...)
	writeJSON(w, r, http.StatusOK, list)
}

// serveRole is etcd's forRole.
func (h *Handler) serveRole(w http.ResponseWriter, r *http.Request, name string) {
	if !h.authPreamble(w, r, false, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	switch r.Method {
	case http.MethodGet:
		if name == tlsauth.RootRole {
			writeJSON(w, r, http.StatusOK, rootRoleJSON)
			return
		}
		d, err := h.readPolicy(r.Context())
		if err != nil {
			h.writeAuthError(w, r, err)
			return
		}
		rw, ok := d.Roles[name]
		if !ok {
			h.writeAuthError(w, r, authErr(http.StatusNotFound, "Role %s does not exist.", name))
			return
		}
		writeJSON(w, r, http.StatusOK, newRoleJSON(name, rw))
	case http.MethodPut:
		h.putRole(w, r, name)
	case http.MethodDelete:
		if name == tlsauth.RootRole {
			h.writeAuthError(w, r, errRootRole)
			return
		}
		_, err := h.changePolicy(r, func(d *policyDoc) error {
			if _, ok := d.Roles[name]; !ok {
				return authErr(http.StatusNotFound, "Role %s doesn't exist.", name)
			}
			// As in etcd, users keep the name: it grants nothing until a
			// role of that name exists again.
			delete(d.Roles, name)
			return nil
		})
		if err != nil {
			h.writeAuthError(w, r, err)
			return
		}
		writeEmpty(w, r)
	}
}

var errRootRole = authErr(http.StatusForbidden, "Cannot modify role %s: is root role.", tlsauth.RootRole)

// putRole creates a role with its "permissions", or changes one with
// "grant" and "revoke", as etcd's CreateRole and UpdateRole.
func (h *Handler) putRole(w http.ResponseWriter, r *http.Request, name string) {
	var in roleJSON
	if !h.decodeAuthBody(w, r, &in) {
		return
	}
	if in.Role != name {
		writeHTTPError(w, r, http.StatusBadRequest, "Role JSON name does not match the name in the URL")
		return
	}
	update := !in.Grant.isEmpty() || !in.Revoke.isEmpty()
	if update && !in.Permissions.isEmpty() {
		writeHTTPError(w, r, http.StatusBadRequest, "Role JSON contains both permissions and grant/revoke")
		return
	}
	if name == tlsauth.RootRole {
		h.writeAuthError(w, r, errRootRole)
		return
	}
	var all []string
	for _, p := range []*permissionsJSON{&in.Permissions, in.Grant, in.Revoke} {
		if p != nil {
			all = slices.Concat(all, p.KV.Read, p.KV.Write)
		}
	}
	for _, pat := range all {
		if err := tlsauth.ValidatePattern(pat); err != nil {
			h.writeAuthError(w, r, authErr(http.StatusBadRequest, "%s", trimPkg(err)))
			return
		}
	}
	d, err := h.changePolicy(r, func(d *policyDoc) error {
		old, exists := d.Roles[name]
		if !update {
			if exists {
				return authErr(http.StatusConflict, "Role %s already exists.", name)
			}
			d.Roles[name] = tlsauth.Permissions{Read: sortedSet(in.Permissions.KV.Read), Write: sortedSet(in.Permissions.KV.Write)}
			return nil
		}
		if !exists {
			return authErr(http.StatusNotFound, "Role %s does not exist.", name)
		}
		next := tlsauth.Permissions{Read: slices.Clone(old.Read), Write: slices.Clone(old.Write)}
		if g := in.Grant; g != nil {
			for _, p := range g.KV.Read {
				if slices.Contains(next.Read, p) {
					return authErr(http.StatusConflict, "Granting duplicate read permission %s", p)
				}
				next.Read = append(next.Read, p)
			}
			for _, p := range g.KV.Write {
				if slices.Contains(next.Write, p) {
					return authErr(http.StatusConflict, "Granting duplicate write permission %s", p)
				}
				next.Write = append(next.Write, p)
			}
		}
		if rv := in.Revoke; rv != nil {
			// As in etcd, revoking a permission the role lacks is no error.
			next.Read, next.Write = without(next.Read, rv.KV.Read), without(next.Write, rv.KV.Write)
		}
		next.Read, next.Write = sortedSet(next.Read), sortedSet(next.Write)
		if slices.Equal(next.Read, sortedSet(old.Read)) && slices.Equal(next.Write, sortedSet(old.Write)) {
			return authErr(http.StatusBadRequest, "Role not updated. Use grant/revoke to update the role.")
		}
		d.Roles[name] = next
		return nil
	})
	if err != nil {
		h.writeAuthError(w, r, err)
		return
	}
	code := http.StatusOK
	if !update {
		code = http.StatusCreated
	}
	writeJSON(w, r, code, newRoleJSON(name, d.Roles[name]))
}

// trimPkg drops the "tlsauth: " prefix of a validation error for a client.
func trimPkg(err error) string {
	return strings.TrimPrefix(err.Error(), "tlsauth: ")
}
