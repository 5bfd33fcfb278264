package v2http

import (
	"fmt"
	"net/http"

	"github.com/cairnkv/cairn/store"
)

// serveLeader serves /mod/v2/leader/<name> (reference/etcd-v2.md §5.2), an
// election on a lock queue of its own whose entries hold the candidates'
// names:
//
//	PUT    ?name=&ttl=&timeout=  campaign: blocks until elected; 200, body =
//	                             the leader's index (its fencing token). The
//	                             leader repeating it renews.
//	GET                          the leader's name; 200 empty when none, 100
//	                             (404) when the election was never held
//	GET    ?wait=true            blocks until the leader is another name
//	                             than at the request's start (or none), then
//	                             answers the new one (empty: none)
//	DELETE ?name=                resign (or leave the queue)
//
// A missing name is 206 (cause "Set", "Delete"); ttl and timeout are
// acquire's (202, 205).
func (h *Handler) serveLeader(w http.ResponseWriter, r *http.Request, rest string) {
	if !checkModMethod(w, r, leaderMethods) {
		return
	}
	mr, perr := h.parseMod(w, r, modLeader, rest, "name")
	if perr != nil {
		h.writeKeyError(w, r, perr)
		return
	}
	if !h.authorizeMod(w, r, &mr) {
		return
	}
	name := formValue(r.Form, "name")
	switch r.Method {
	case http.MethodPut:
		if name == "" {
			h.writeKeyError(w, r, requestError(store.EcodeNameRequired, "Set"))
			return
		}
		ttl, e := parseTTL(r, "Acquire")
		if e == nil {
			var timeout int64
			if timeout, e = parseTimeout(r); e == nil {
				h.acquire(w, r, &mr, name, ttl, timeout)
				return
			}
		}
		h.writeKeyError(w, r, e)
	case http.MethodGet:
		wait, err := getBool(r.Form, "wait")
		if err != nil {
			h.writeKeyError(w, r, requestError(store.EcodeInvalidField, `invalid value for "wait"`))
			return
		}
		if wait {
			h.watchLeader(w, r, &mr)
			return
		}
		h.getLeader(w, r, &mr)
	case http.MethodDelete:
		if name == "" {
			h.writeKeyError(w, r, requestError(store.EcodeNameRequired, "Delete"))
			return
		}
		h.release(w, r, &mr, "", name, "Delete")
	}
}

// leaderOf is the leader of an election queue: the name of its head.
func leaderOf(q []queueEntry) string {
	if len(q) == 0 {
		return ""
	}
	return q[0].value
}

// getLeader answers the current leader, read linearizably.
func (h *Handler) getLeader(w http.ResponseWriter, r *http.Request, mr *modRequest) {
	q, at, exists, err := h.readQueueLinearizable(r.Context(), mr.dir)
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	if !exists {
		h.writeKeyError(w, r, requestError(store.EcodeKeyNotFound, fmt.Sprintf("election %q was never held", mr.name)))
		return
	}
	h.writeModText(w, r, http.StatusOK, at, leaderOf(q))
}

// watchLeader is GET ?wait=true: it reads the leader linearizably, then
// watches the queue on the local replica until its head holds another
// name, and answers that name (empty when the queue emptied) with
// X-Etcd-Index = the index it was read at. An election never held counts
// as one without a leader, so an observer may start before the
// candidates. It counts as a watch against the per-client and member
// limits of /v2/keys (429 beyond them). When the handler closes, it answers 503.
func (h *Handler) watchLeader(w http.ResponseWriter, r *http.Request, mr *modRequest) {
	markWatch(w)
	client := h.cfg.ClientID(r)
	if why := h.watchers.acquire(client); why != watchOK {
		h.refuseWatch(w, r, why)
		return
	}
	defer h.watchers.release(client)
	ctx := r.Context()
	q, at, _, err := h.readQueueLinearizable(ctx, mr.dir)
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	start := leaderOf(q)
	st := h.cluster.Store()
	for {
		wa, err := st.Watch(mr.dir, true, false, at+1)
		if err != nil {
			h.writeKeyError(w, r, err)
			return
		}
		select {
		case <-wa.EventChan():
		case <-ctx.Done():
			wa.Remove()
			return
		case <-h.done:
			wa.Remove()
			h.writeModText(w, r, http.StatusServiceUnavailable, 0, "this member is shutting down; watch the election through another member\n")
			return
		}
		wa.Remove()
		// The local replica has applied at least the event: its state
		// now is as new as the event or newer.
		if q, at, _, err = h.readQueue(mr.dir); err != nil {
			h.writeKeyError(w, r, err)
			return
		}
		if now := leaderOf(q); now != start {
			h.writeModText(w, r, http.StatusOK, at, now)
			return
		}
	}
}
