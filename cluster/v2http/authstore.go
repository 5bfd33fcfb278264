package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth"
)

// The authorization policy lives in the replicated store, so that every
// node enforces the same one: one JSON document at authPolicyKey, below
// Cairn's hidden internal prefix. One document rather than a key per user
// and role because every change is then a single compare-and-swap: "enable
// only while a root user exists" and "never remove the last root user
// while enabled" hold under concurrent changes on different nodes, and a
// node checks whether the policy changed by comparing one modifiedIndex.
const (
	// internalPrefix holds Cairn's own keys (the policy, and those of other
	// subsystems). Its name starts with '_', so listings and recursive
	// watches skip it; with authorization on, only root may address it
	// through /v2/keys.
	internalPrefix = "/_cairn"
	// authPolicyKey is the policy document (policyDoc as JSON).
	authPolicyKey = internalPrefix + "/auth/policy"
	// maxPolicyBytes bounds the policy document: every change rewrites it
	// whole through raft.
	maxPolicyBytes = 1 << 20
	// policyVersion is the format of policyDoc.
	policyVersion = 1
	// policyRetries bounds the compare-and-swap attempts of one change
	// that keeps losing to concurrent changes.
	policyRetries = 8
)

// policyDoc is the stored policy: tlsauth.Policy (whose JSON it is) with
// the format version first. Role lists and pattern lists are sorted and
// free of duplicates; lists are never null on the wire.
type policyDoc struct {
	Version int `json:"version"`
	tlsauth.Policy
}

func newPolicyDoc() *policyDoc {
	return &policyDoc{Version: policyVersion, Policy: tlsauth.Policy{Users: map[string][]string{}, Roles: map[string]tlsauth.Permissions{}}}
}

func (d *policyDoc) clone() *policyDoc {
	c := &policyDoc{Version: d.Version, Policy: tlsauth.Policy{Enabled: d.Enabled, Users: maps.Clone(d.Users), Roles: maps.Clone(d.Roles)}}
	if c.Users == nil {
		c.Users = map[string][]string{}
	}
	if c.Roles == nil {
		c.Roles = map[string]tlsauth.Permissions{}
	}
	return c
}

// policy is the document as tlsauth rules. It shares the document's maps:
// a document is cloned before it is changed.
func (d *policyDoc) policy() *tlsauth.Policy {
	p := d.Policy
	return &p
}

// parsePolicy decodes and checks a stored document.
func parsePolicy(value string) (*policyDoc, error) {
	d := &policyDoc{}
	if err := json.Unmarshal([]byte(value), d); err != nil {
		return nil, err
	}
	if d.Version != policyVersion {
		return nil, fmt.Errorf("format version %d, want %d", d.Version, policyVersion)
	}
	d = d.clone() // null maps become empty ones
	for u, roles := range d.Users {
		if err := tlsauth.ValidateUser(u); err != nil {
			return nil, err
		}
		for _, r := range roles {
			if r != tlsauth.RootRole {
				if err := tlsauth.ValidateRole(r); err != nil {
					return nil, err
				}
			}
		}
	}
	for name, rw := range d.Roles {
		if err := tlsauth.ValidateRole(name); err != nil {
			return nil, err
		}
		if name == tlsauth.RootRole {
			return nil, errors.New("the root role is built in and cannot be stored")
		}
		for _, p := range slices.Concat(rw.Read, rw.Write) {
			if err := tlsauth.ValidatePattern(p); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// policyState is the policy as read from the local replica at one store
// index.
type policyState struct {
	checked uint64 // store index the policy key was read at
	mod     uint64 // its modifiedIndex; 0 when there is none
	doc     *policyDoc
	pol     *tlsauth.Policy
	// err says the stored document does not parse. Enforcement then fails
	// closed (authorization on, nobody but nodes may do anything) until a
	// node identity repairs or deletes the key.
	err error
}

// policyCache keeps the parsed policy of the local replica. A request pays
// one read of the store index while nothing was written; after a write,
// one caller (the others wait for it) reads the policy key again (a GetAll,
// which the store's counters do not count), and parses it only when its
// modifiedIndex moved. No goroutine and no store watcher are needed.
type policyCache struct {
	log *slog.Logger
	cur atomic.Pointer[policyState]
	mu  sync.Mutex // serializes refreshes, so that many watches woken by one event read the key once
}

// get returns the policy of st as of now.
func (c *policyCache) get(st *store.Store) *policyState {
	return c.getAt(st, st.Index())
}

// getAt returns the policy of st as of store index idx or later. With a
// state read at idx or later at hand, it costs one atomic load.
func (c *policyCache) getAt(st *store.Store, idx uint64) *policyState {
	if cur := c.cur.Load(); cur != nil && cur.checked >= idx {
		return cur
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.cur.Load()
	if cur != nil && cur.checked >= idx {
		return cur
	}
	nodes, at := st.GetAll(authPolicyKey, time.Time{})
	next := &policyState{checked: at}
	var value string
	if len(nodes) > 0 {
		n := nodes[0]
		next.mod = n.ModifiedIndex
		if n.Dir || n.Value == nil {
			next.err = errors.New(authPolicyKey + " is a directory")
		} else {
			value = *n.Value
		}
	}
	switch {
	case cur != nil && cur.mod == next.mod:
		next.doc, next.pol, next.err = cur.doc, cur.pol, cur.err
	case next.err != nil:
	case next.mod == 0:
		next.doc = newPolicyDoc()
	default:
		next.doc, next.err = parsePolicy(value)
	}
	if next.err != nil && (cur == nil || cur.mod != next.mod) {
		c.log.Error("the stored authorization policy is unreadable: only node identities are allowed anything until it is repaired",
			"key", authPolicyKey, "modifiedIndex", next.mod, "err", next.err)
	}
	switch {
	case next.pol != nil:
	case next.err != nil:
		next.doc, next.pol = nil, &tlsauth.Policy{Enabled: true}
	default:
		next.pol = next.doc.policy()
	}
	c.cur.Store(next)
	return next
}

// authError is a refused auth API request: etcd's auth.Error, answered as
// {"message":"auth: ..."} with its status.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

func authErr(status int, format string, a ...any) *authError {
	return &authError{status: status, msg: "auth: " + fmt.Sprintf(format, a...)}
}

// errPolicyBusy is a change that kept losing its compare-and-swap.
var errPolicyBusy = &authError{status: http.StatusConflict, msg: "auth: the policy is being changed concurrently; retry"}

// updatePolicy applies change to the current policy document and proposes
// the result, as a compare-and-swap on the policy key's modifiedIndex
// (create-only when there is none); when another change committed first,
// it reads again and retries. change gets a copy it may modify; an error it
// returns ends the update with nothing written. The read is linearizable,
// so a change never starts from a policy older than one already
// acknowledged.
func (h *Handler) updatePolicy(ctx context.Context, change func(d *policyDoc) error) (*policyDoc, error) {
	for range policyRetries {
		if err := h.cluster.ReadBarrier(ctx); err != nil {
			return nil, err
		}
		cur := h.policy.get(h.cluster.Store())
		if cur.err != nil {
			return nil, errPolicyUnreadable(cur.err)
		}
		d := cur.doc.clone()
		if err := change(d); err != nil {
			return nil, err
		}
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		if len(b) > maxPolicyBytes {
			return nil, authErr(http.StatusBadRequest, "the policy would be %d bytes, over the limit of %d bytes", len(b), maxPolicyBytes)
		}
		req := &store.Request{Method: store.MethodPut, Path: authPolicyKey, Value: string(b)}
		if cur.mod == 0 {
			req.PrevExist = store.PrevExistFalse
		} else {
			req.PrevIndex = cur.mod
		}
		_, err = h.cluster.Propose(ctx, req)
		var se *store.Error
		if errors.As(err, &se) && (se.ErrorCode == store.EcodeTestFailed || se.ErrorCode == store.EcodeNodeExist) {
			continue // another change won: start again from it
		}
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, errPolicyBusy
}

func errPolicyUnreadable(err error) *authError {
	return &authError{status: http.StatusInternalServerError,
		msg: "auth: the stored policy " + authPolicyKey + " is unreadable (" + err.Error() + "); a node certificate may delete it with DELETE /v2/keys" + authPolicyKey + ", which disables authorization"}
}

// sortedSet returns the sorted, duplicate-free union of the lists.
func sortedSet(lists ...[]string) []string {
	out := slices.Concat(lists...)
	slices.Sort(out)
	return slices.Compact(out)
}

// without returns list minus the elements of drop.
func without(list, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(drop, s) })
}
