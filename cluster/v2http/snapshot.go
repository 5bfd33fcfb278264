package v2http

import (
	"context"
	"net/http"

	"github.com/cairnkv/cairn/cluster"
)

// snapshotPath serves a consistent backup of the cluster (a Cairn
// extension; `cairn snapshot save` downloads it, `cairn snapshot restore`
// makes a new cluster from it).
const snapshotPath = "/cairn/v1/snapshot"

// maxSnapshotStreams bounds the backups being streamed at once by this
// process: each holds a copy of the store's node headers until its client
// has read it all.
const maxSnapshotStreams = 2

// snapshotSlots is shared by every Handler of the process on purpose: the
// memory it bounds is the process's.
var snapshotSlots = make(chan struct{}, maxSnapshotStreams)

// Snapshotter is implemented by a Cluster that can take backups
// (cluster.Node does). Without it, GET /cairn/v1/snapshot answers 501.
type Snapshotter interface {
	// Backup takes a linearizable, point-in-time backup of the cluster's
	// state from the local replica (see cluster.Node.Backup). An error is
	// a raft failure: no quorum, or a timeout.
	Backup(ctx context.Context) (*cluster.Backup, error)
}

// serveSnapshot streams a backup file (cluster.Backup.WriteTo) to a root
// client as application/octet-stream, with its indexes in X-Etcd-Index and
// X-Raft-Index. The body ends with a length and a SHA-256 checksum, so a
// download cut short is detected by whoever reads it (cairn snapshot save
// verifies the whole file before it keeps it). It returns the endpoint
// label for metrics.
func (h *Handler) serveSnapshot(w http.ResponseWriter, r *http.Request) string {
	const label = "snapshot"
	if !allowMethod(w, r.Method, http.MethodGet) {
		return label
	}
	// A backup is the whole key space, Cairn's internal keys (private
	// keys) included: a node identity, or root with authorization on. With
	// authorization off every certificate is root, so only nodes.
	if !h.mayTakeSnapshot(r) {
		h.writeNoAuth(w, r)
		return label
	}
	w.Header().Set("X-Etcd-Cluster-ID", hexID(h.cluster.Status().ClusterID))
	sn, ok := h.cluster.(Snapshotter)
	if !ok {
		writeHTTPError(w, r, http.StatusNotImplemented, "snapshots are not supported by this server")
		return label
	}
	select {
	case snapshotSlots <- struct{}{}:
		defer func() { <-snapshotSlots }()
	default:
		w.Header().Set("Retry-After", "5")
		writeHTTPError(w, r, http.StatusServiceUnavailable, "too many snapshots are being taken on this member; retry later")
		return label
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	b, err := sn.Backup(ctx)
	cancel()
	if err != nil {
		h.log.Warn("snapshot failed", "err", err)
		writeHTTPError(w, r, http.StatusInternalServerError, "cannot take a consistent snapshot: "+err.Error())
		return label
	}
	info := b.Info()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", `attachment; filename="cairn-`+hexID(info.ClusterID)+"-"+utoa(info.StoreIndex)+`.snap"`)
	hd.Set("X-Etcd-Index", utoa(info.StoreIndex))
	hd.Set("X-Raft-Index", utoa(info.RaftIndex))
	w.WriteHeader(http.StatusOK)
	n, err := b.WriteTo(w)
	if err != nil {
		// The client went away; it has no trailer, so it knows.
		h.log.Warn("snapshot download ended early", "bytes", n, "err", err)
		return label
	}
	h.log.Info("snapshot sent", "store_index", info.StoreIndex, "raft_index", info.RaftIndex, "bytes", n)
	return label
}

// mayTakeSnapshot reports whether the client of r may download a backup: a
// node identity, or root under an enabled policy.
func (h *Handler) mayTakeSnapshot(r *http.Request) bool {
	if h.isNode(r) {
		return true
	}
	pol := h.policy.get(h.cluster.Store()).pol
	return pol.Enabled && h.principalOf(r, pol).Root()
}
