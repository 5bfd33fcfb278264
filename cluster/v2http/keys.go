package v2http

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/store"
)

var keysMethods = []string{http.MethodHead, http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete}

// serveKeys serves /v2/keys/... following etcd's dispatch (reference §1.2.3):
// GET with wait watches the local store; GET and HEAD read the local store
// after a read barrier (skipped with stale=true, unless quorum=true also
// asks for it); PUT, POST and DELETE are proposed through raft.
func (h *Handler) serveKeys(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(keysMethods, r.Method) {
		// etcd sets the cluster ID only after the method check.
		allowMethod(w, r.Method, keysMethods...)
		return
	}
	kr, perr := h.parseKeyRequest(w, r)
	if perr != nil {
		h.writeKeyError(w, r, perr)
		return
	}
	// As in etcd, authorization follows parsing (and so Cairn's write
	// validation): a refused request changes nothing either way.
	pr, node := h.principal(r), h.isNode(r)
	if !authorizeKey(pr, node, r.Method, &kr) {
		h.refuseKey(w, r, pr, &kr)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if kr.wait {
			h.serveWatch(w, r, &kr, pr)
			return
		}
		h.serveGet(w, r, &kr)
	default:
		h.serveWrite(w, r, &kr)
	}
}

// errCatchingUp refuses a stale read on a member that restarted and has
// not yet applied again everything it served before (cluster.Node.CaughtUp).
var errCatchingUp = errors.New("this member restarted and has not yet applied again everything it served before it stopped; read from another member, or without stale=true")

func (h *Handler) serveGet(w http.ResponseWriter, r *http.Request, kr *keyRequest) {
	if kr.stale && !kr.quorum && h.caughtUp != nil && !h.caughtUp.CaughtUp() {
		h.writeKeyError(w, r, errCatchingUp)
		return
	}
	if kr.quorum || !kr.stale {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
		err := h.cluster.ReadBarrier(ctx)
		cancel()
		if err != nil {
			h.writeKeyError(w, r, err)
			return
		}
	}
	ev, err := h.cluster.Store().Get(kr.Path, kr.Recursive, kr.sorted, h.cfg.Now())
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	h.writeEvent(w, r, ev, false)
}

func (h *Handler) serveWrite(w http.ResponseWriter, r *http.Request, kr *keyRequest) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	ev, err := h.cluster.Propose(ctx, &kr.Request)
	if err == nil && ev == nil {
		err = errors.New("v2http: the cluster applied the write but returned no event")
	}
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	h.writeEvent(w, r, ev, kr.noValueOnSuccess)
}

// writeEvent is etcd's writeKeyEvent: headers, 201 when the event created
// its node, the event as JSON. With noValueOnSuccess, set, create, update
// and compareAndSwap drop node and prevNode ({"action":"set"}).
func (h *Handler) writeEvent(w http.ResponseWriter, r *http.Request, ev *store.Event, noValueOnSuccess bool) {
	st, etcdIndex := h.cluster.Status(), ev.EtcdIndex
	code := http.StatusOK
	if ev.IsCreated() {
		code = http.StatusCreated
	}
	if noValueOnSuccess {
		switch ev.Action {
		case store.ActionSet, store.ActionCreate, store.ActionUpdate, store.ActionCompareAndSwap:
			// ev may be shared with the store's history: never modify it.
			ev = &store.Event{Action: ev.Action}
		}
	}
	buf, err := encodeEvent(ev)
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	h.setKeyHeaders(w, st, etcdIndex)
	writeBody(w, r, code, "", buf.Bytes()) // Content-Type is set
	putBuf(buf)
}

// setKeyHeaders sets the headers of a successful /v2/keys response. The
// keys are in canonical form (what Header.Set would make of them) and the
// values share one allocation: this runs on every read and write.
func (h *Handler) setKeyHeaders(w http.ResponseWriter, st cluster.Status, etcdIndex uint64) {
	hd := w.Header()
	v := make([]string, 5)
	v[0], v[1], v[2], v[3], v[4] = hexID(st.ClusterID), "application/json", utoa(etcdIndex), utoa(st.CommitIndex), utoa(st.Term)
	hd["X-Etcd-Cluster-Id"] = v[0:1:1]
	hd["Content-Type"] = v[1:2:2]
	hd["X-Etcd-Index"] = v[2:3:3]
	hd["X-Raft-Index"] = v[3:4:4]
	hd["X-Raft-Term"] = v[4:5:5]
}

// NotAppliedHeader marks an error answer to a request that provably
// changed nothing (no leader could be reached to propose it, or a full
// disk refused it before raft stored it), so that a client may send even a
// write to another member (cluster/v2client does).
const NotAppliedHeader = "X-Cairn-Not-Applied"

// writeKeyError is etcd's writeKeyError: a *store.Error as is, anything
// else (raft, timeout) as error 300 with the error text as cause and index
// 0. Errors carry the cluster ID but no raft headers.
func (h *Handler) writeKeyError(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("X-Etcd-Cluster-ID", hexID(h.cluster.Status().ClusterID))
	if errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrDiskFull) {
		// Nothing was proposed: a client may send the request elsewhere.
		w.Header().Set(NotAppliedHeader, "true")
	}
	var e *store.Error
	if !errors.As(err, &e) {
		if !errors.Is(err, cluster.ErrDiskFull) { // logged by the node at a bounded rate
			h.log.Warn("v2 request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		e = store.NewError(store.EcodeRaftInternal, err.Error(), 0)
	}
	writeStoreError(w, r, e, 0)
}
