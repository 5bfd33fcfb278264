package dashboard

import (
	"encoding/json"
	"net/http"
	"path"
	"strings"
)

// Identity is /api/whoami: the client of a request and what it may do.
type Identity struct {
	// Name is the identity of the client certificate ("client/alice",
	// "node/n1", or a CN); "" without a readable one.
	Name string `json:"name"`
	// Node reports a node identity (root, and the only one that may touch
	// /_cairn).
	Node bool `json:"node"`
	// AuthEnabled reports whether authorization is on; while it is off,
	// everyone may do everything.
	AuthEnabled bool `json:"authEnabled"`
	Root        bool `json:"root"`
	Guest       bool `json:"guest"`
	// Roles are the user's roles with their key patterns.
	Roles []Role `json:"roles"`
	// Keys says what the client may do on each key asked about.
	Keys []KeyAccess `json:"keys"`
	// Index is the store's index (X-Etcd-Index) before Exists was read: a
	// watch from Index+1 sees every later change of those keys.
	Index uint64 `json:"index"`
}

// Role is one role of the client.
type Role struct {
	Name  string   `json:"name"`
	Read  []string `json:"read"`
	Write []string `json:"write"`
}

// KeyAccess is what the client may do on Key, as the keys API decides it.
type KeyAccess struct {
	Key           string `json:"key"`
	Read          bool   `json:"read"`
	ReadRecursive bool   `json:"readRecursive"`
	Write         bool   `json:"write"`
	// Exists reports whether the key exists on this member's replica, for
	// a client that may read it (false otherwise): the page reads a
	// directory that is not there yet without a 404 in the console.
	Exists bool `json:"exists"`
}

// maxWhoamiKeys bounds the keys one /api/whoami request asks about.
const maxWhoamiKeys = 32

// serveWhoami answers /api/whoami?key=K&key=...; the keys the page always
// needs (the root, the discovery directory, the module queues) come first.
func (h *Handler) serveWhoami(w http.ResponseWriter, r *http.Request) {
	keys := []string{"/", h.cfg.Discovery.Dir(), "/_mod", "/_mod/lock", "/_mod/leader"}
	for _, k := range r.URL.Query()["key"] {
		if len(keys) >= maxWhoamiKeys {
			break
		}
		if len(k) > 4096 {
			continue
		}
		keys = append(keys, path.Clean("/"+strings.TrimPrefix(k, "/")))
	}
	id := h.cfg.Whoami(r, keys)
	if id.Roles == nil {
		id.Roles = []Role{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(id)
}
