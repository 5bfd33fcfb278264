package tlsauth

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Authorization follows etcd 2.3's v2 auth (etcdserver/auth), with
// certificate identities in place of users with passwords:
//
//   - A user is an identity string (Identity.String): "client/<name>",
//     "node/<name>" or the CN of a certificate without a SPIFFE URI SAN.
//     A user holds roles; a role holds key patterns for read and for write.
//   - A pattern ending in '*' is a prefix: "/foo/*" matches every key below
//     /foo (and, see MatchKey, the directory /foo itself), "/foo*" also
//     matches /foobar, "*" and "/*" match everything. Any other pattern is
//     one exact key.
//   - The built-in role "root" may do everything, including managing
//     authorization and membership. Node identities (IsNode) are always
//     root: they run the cluster.
//   - An identity without a user entry, and a request without a
//     certificate, get the role "guest" if it exists. As in etcd, enabling
//     authorization creates a missing guest role with full access ("/*" for
//     read and write), so nothing changes for anyone until an operator
//     restricts or deletes it.
//   - While authorization is disabled, everyone is root.

// Names of the built-in roles.
const (
	RootRole  = "root"
	GuestRole = "guest"
)

// Sentinel errors of the authorization rules.
var (
	ErrInvalidUser    = errors.New("tlsauth: invalid user name")
	ErrInvalidRole    = errors.New("tlsauth: invalid role name")
	ErrInvalidPattern = errors.New("tlsauth: invalid key pattern")
)

// Limits on names and patterns, so that a policy stays small.
const (
	MaxUserBytes    = 256
	MaxRoleBytes    = 128
	MaxPatternBytes = 4096
)

// Permissions are the key patterns a role may read and write. As JSON
// they are etcd's RWPermission ({"read":[...],"write":[...]}), the shape
// of the auth API and of the stored policy.
type Permissions struct {
	Read  []string `json:"read"`
	Write []string `json:"write"`
}

// AllKeys is the permission of the root role, and etcd's default for the
// guest role: every key, read and write.
func AllKeys() Permissions {
	return Permissions{Read: []string{"/*"}, Write: []string{"/*"}}
}

// Policy is the authorization state of a cluster. Its zero value is
// authorization disabled. A Policy is read concurrently once built: do not
// modify it after handing it out. Its JSON form is the policy document the
// cluster stores (cluster/v2http adds a format version to it).
type Policy struct {
	// Enabled turns enforcement on; while it is false everyone is root.
	Enabled bool `json:"enabled"`
	// Users maps a user (an identity string) to its role names. A role
	// name with no entry in Roles (other than RootRole) grants nothing.
	Users map[string][]string `json:"users"`
	// Roles are the stored roles by name. RootRole is built in and never
	// stored; GuestRole is an ordinary entry.
	Roles map[string]Permissions `json:"roles"`
}

// HasRootUser reports whether some user holds the root role: the condition
// for enabling authorization (etcd requires its "root" user; here any
// identity granted the root role will do).
func (p *Policy) HasRootUser() bool {
	for _, roles := range p.Users {
		for _, r := range roles {
			if r == RootRole {
				return true
			}
		}
	}
	return false
}

// Principal returns what id may do under p. While p is disabled, and for a
// node identity (IsNode with allowedNodeCNs), that is everything. An
// identity with a user entry gets the union of its roles (a user with no
// roles may do nothing); one without gets the guest role. A CN-only
// identity whose CN contains '/' never matches a user entry (it would pose
// as "client/<name>" or "node/<name>"), so it is a guest.
func (p *Policy) Principal(id Identity, allowedNodeCNs []string) Principal {
	name := id.String()
	if !p.Enabled || IsNode(id, allowedNodeCNs) {
		return Principal{Name: name, root: true}
	}
	if id.Kind == KindCN && strings.Contains(id.Name, "/") {
		return p.guest(name)
	}
	roles, ok := p.Users[name]
	if !ok {
		return p.guest(name)
	}
	pr := Principal{Name: name}
	for _, r := range roles {
		if r == RootRole {
			return Principal{Name: name, root: true}
		}
		if perms, ok := p.Roles[r]; ok {
			pr.perms = append(pr.perms, perms)
		}
	}
	return pr
}

// Anonymous returns what a request without a verified certificate may do:
// everything while p is disabled, else the guest role (etcd's
// unauthenticated request).
func (p *Policy) Anonymous() Principal {
	if !p.Enabled {
		return Principal{root: true}
	}
	return p.guest("")
}

func (p *Policy) guest(name string) Principal {
	pr := Principal{Name: name, Guest: true}
	if perms, ok := p.Roles[GuestRole]; ok {
		pr.perms = []Permissions{perms}
	}
	return pr
}

// Principal is what one identity may do: root, or the union of a set of
// role permissions. The zero Principal may do nothing (the answer for a
// certificate whose identity cannot be read).
type Principal struct {
	// Name is the identity string; "" for a request without a certificate.
	Name string
	// Guest reports that the permissions are the guest role's.
	Guest bool

	root  bool
	perms []Permissions
}

// Root reports whether p holds the root role: every key, and the auth and
// members APIs.
func (p Principal) Root() bool { return p.root }

// CanRead reports whether p may read key: with recursive (a recursive get
// or watch), only a prefix pattern covering key will do, as in etcd;
// the children of key are not checked one by one.
func (p Principal) CanRead(key string, recursive bool) bool {
	if p.root {
		return true
	}
	for _, perms := range p.perms {
		if matchAny(perms.Read, key, recursive) {
			return true
		}
	}
	return false
}

// CanWrite is CanRead for writes (set, create, update, delete, CAS, CAD;
// recursive for a recursive delete).
func (p Principal) CanWrite(key string, recursive bool) bool {
	if p.root {
		return true
	}
	for _, perms := range p.perms {
		if matchAny(perms.Write, key, recursive) {
			return true
		}
	}
	return false
}

// CanWatch reports whether p may open a watch on key. A non-recursive
// watch needs CanRead(key, false). A recursive watch needs a read pattern
// that matches something at or below key; the watch then delivers only
// the events CanSee allows. Unlike etcd, which would refuse a recursive
// watch on / to a client allowed only /skydns/x/*, Cairn lets it watch
// and filters.
func (p Principal) CanWatch(key string, recursive bool) bool {
	if p.root {
		return true
	}
	if !recursive {
		return p.CanRead(key, false)
	}
	return p.readsBelow(key)
}

// CanSee reports whether p may receive a watch event about key. The event
// of a directory removal (delete or expire of a directory, which removes
// everything below it) is visible to whoever may read something below
// that directory.
func (p Principal) CanSee(key string, dirRemoved bool) bool {
	if p.CanRead(key, false) {
		return true
	}
	return dirRemoved && p.readsBelow(key)
}

// readsBelow reports whether a read pattern of p matches key or a key below
// it.
func (p Principal) readsBelow(key string) bool {
	if p.root {
		return true
	}
	for _, perms := range p.perms {
		for _, pat := range perms.Read {
			if overlapsTree(pat, key) {
				return true
			}
		}
	}
	return false
}

func matchAny(patterns []string, key string, recursive bool) bool {
	for _, pat := range patterns {
		if recursive {
			if MatchTree(pat, key) {
				return true
			}
		} else if MatchKey(pat, key) {
			return true
		}
	}
	return false
}

// MatchKey reports whether pattern grants access to key itself: etcd's
// simpleMatch. A pattern ending in '*' matches every key starting with
// what precedes the '*'; any other pattern matches only the key equal to
// it. key is a clean path ("/", "/a/b").
//
// Cairn cleans request paths, so the key of /v2/keys/dir/ is "/dir", where
// etcd matched the raw "/dir/". So that "/dir/*" keeps covering a get or a
// delete of the directory itself, a pattern ending in "/*" also matches the
// key without its trailing slash.
func MatchKey(pattern, key string) bool {
	prefix, ok := strings.CutSuffix(pattern, "*")
	if !ok {
		return pattern != "" && key == pattern
	}
	return strings.HasPrefix(key, prefix) || (len(prefix) > 1 && strings.HasSuffix(prefix, "/") && key == prefix[:len(prefix)-1])
}

// MatchTree reports whether pattern grants access to key and everything
// below it, as a recursive request needs: etcd's prefixMatch. Only a
// pattern ending in '*' can; it then matches as in MatchKey.
func MatchTree(pattern, key string) bool {
	if !strings.HasSuffix(pattern, "*") {
		return false
	}
	return MatchKey(pattern, key)
}

// overlapsTree reports whether pattern matches key or some key below it.
func overlapsTree(pattern, key string) bool {
	dir := key
	if dir != "/" {
		dir += "/"
	}
	prefix, ok := strings.CutSuffix(pattern, "*")
	if !ok {
		return pattern != "" && (pattern == key || strings.HasPrefix(pattern, dir))
	}
	return strings.HasPrefix(prefix, dir) || strings.HasPrefix(dir, prefix)
}

// ValidateUser checks a user name: an identity string as Identity.String
// makes it. "client/<name>" and "node/<name>" must carry a valid SPIFFE
// name (letters, digits, '.', '-', '_'); anything else is a CN, which must
// be printable UTF-8 without '/' (a CN containing '/' could pose as a
// client or node identity). At most MaxUserBytes bytes.
func ValidateUser(user string) error {
	if user == "" || len(user) > MaxUserBytes {
		return fmt.Errorf("%w %q: must be 1 to %d bytes", ErrInvalidUser, user, MaxUserBytes)
	}
	if kind, name, ok := strings.Cut(user, "/"); ok {
		if Kind(kind) != KindClient && Kind(kind) != KindNode {
			return fmt.Errorf("%w %q: a name with '/' must be client/<name> or node/<name> (a certificate identity)", ErrInvalidUser, user)
		}
		if err := ValidateName(name); err != nil {
			return fmt.Errorf("%w %q: %v", ErrInvalidUser, user, strings.TrimPrefix(err.Error(), "tlsauth: "))
		}
		return nil
	}
	if err := printable(user); err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidUser, user, err)
	}
	return nil
}

// ValidateRole checks a role name: 1 to MaxRoleBytes letters, digits, '.',
// '-', '_' or ':', not "." or "..".
func ValidateRole(role string) error {
	if role == "" || len(role) > MaxRoleBytes || role == "." || role == ".." {
		return fmt.Errorf("%w %q: must be 1 to %d characters and not \".\" or \"..\"", ErrInvalidRole, role, MaxRoleBytes)
	}
	for _, r := range role {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == ':') {
			return fmt.Errorf("%w %q: character %q is not allowed (use letters, digits, '.', '-', '_', ':')", ErrInvalidRole, role, r)
		}
	}
	return nil
}

// ValidatePattern checks a key pattern: "*", or a path starting with '/'
// (a trailing '*' makes it a prefix), printable, at most MaxPatternBytes.
func ValidatePattern(pattern string) error {
	if pattern == "*" {
		return nil
	}
	if !strings.HasPrefix(pattern, "/") || len(pattern) > MaxPatternBytes {
		return fmt.Errorf("%w %q: must start with '/' (or be \"*\") and be at most %d bytes", ErrInvalidPattern, pattern, MaxPatternBytes)
	}
	if i := strings.IndexByte(pattern, '*'); i >= 0 && i != len(pattern)-1 {
		return fmt.Errorf("%w %q: '*' is only allowed at the end (a prefix match)", ErrInvalidPattern, pattern)
	}
	if err := printable(pattern); err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidPattern, pattern, err)
	}
	return nil
}

func printable(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("character %q is not printable", r)
		}
	}
	return nil
}
