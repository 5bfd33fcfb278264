package v2http

import (
	"context"
	"errors"
	"net/http"
	"strconv"
)

// transferPath moves the leadership (a Cairn extension; `cairn member
// transfer-leader` calls it).
const transferPath = "/cairn/v1/transfer-leader"

// LeaderTransferrer is implemented by a Cluster that can hand its
// leadership over (cluster.Node does). Without it, the transfer answers 501.
type LeaderTransferrer interface {
	// TransferLeadership moves the leadership to member to (0: the most
	// up-to-date voter) and returns the new leader's ID. An error with a
	// StatusCode() method is the client's (404: no such voter; 409: no
	// other voter).
	TransferLeadership(ctx context.Context, to uint64) (uint64, error)
}

// serveTransfer is POST /cairn/v1/transfer-leader[?to=<member ID or
// name>]: root only, as membership changes; it answers the new leader as
// /v2/members/leader does.
func (h *Handler) serveTransfer(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodPost) {
		return
	}
	if !h.principal(r).Root() {
		h.writeNoAuth(w, r)
		return
	}
	tr, ok := h.cluster.(LeaderTransferrer)
	if !ok {
		writeHTTPError(w, r, http.StatusNotImplemented, "leadership transfer is not supported by this server")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeHTTPError(w, r, http.StatusBadRequest, "bad form: "+err.Error())
		return
	}
	var to uint64
	if name := r.Form.Get("to"); name != "" {
		found := false
		for _, m := range h.cluster.Members() {
			if m.Name == name || hexID(m.ID) == name {
				to, found = m.ID, true
				break
			}
		}
		if !found {
			if id, err := strconv.ParseUint(name, 16, 64); err == nil {
				to = id // let the leader say whether it is a voter
			} else {
				writeHTTPError(w, r, http.StatusNotFound, "No such member: "+name+" (give a member name or hex ID of cairn member list)")
				return
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	id, err := tr.TransferLeadership(ctx, to)
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		h.writeMemberError(w, r, "transfer-leader", r.Form.Get("to"), err)
		return
	}
	if err != nil {
		h.log.Warn("leadership transfer failed", "to", r.Form.Get("to"), "err", err)
		writeHTTPError(w, r, http.StatusInternalServerError, "leadership transfer failed: "+err.Error())
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", hexID(h.cluster.Status().ClusterID))
	for _, m := range h.cluster.Members() {
		if m.ID == id {
			writeJSON(w, r, http.StatusOK, newMember(m))
			return
		}
	}
	writeJSON(w, r, http.StatusOK, member{ID: hexID(id)})
}
