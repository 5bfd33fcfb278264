package v2http

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth"
)

// serveWatch is etcd's handleKeyWatch (GET ?wait=true) on the local store.
//
// The response starts with 200 and X-Etcd-Index = the watcher's start index,
// flushed at once (clients treat a 200 with an empty body as "retry"). A
// one-shot watch writes one event; a stream writes every event followed by
// "\n" and a flush until the client goes away or Close is called.
//
// Unlike etcd, a watch does not end when the store drops its watcher
// because the consumer fell behind (ErrWatcherOverflow) or a snapshot was
// restored (ErrWatcherRestored): it re-registers from the watcher's next
// index, so history replays what was missed. Only when that index has left
// the history does the response end, with no further bytes; the client's
// retry from its last index then gets etcd's 401 (event index cleared).
//
// A client that is not root sees only the events it may read (watchVisible):
// the others are dropped, and a one-shot watch waits for the first visible
// one (its store watcher is a stream for that).
func (h *Handler) serveWatch(w http.ResponseWriter, r *http.Request, kr *keyRequest, pr tlsauth.Principal) {
	markWatch(w)
	client := h.cfg.ClientID(r)
	if why := h.watchers.acquire(client); why != watchOK {
		h.refuseWatch(w, r, why)
		return
	}
	defer h.watchers.release(client)

	// A filtered one-shot watch needs a stream underneath, to get past
	// events it must not deliver.
	stream := kr.stream || !pr.Root()
	node := h.isNode(r)
	var pol *tlsauth.Policy // the policy pr was computed under, once known
	st := h.cluster.Store()
	wa, err := st.Watch(kr.Path, kr.Recursive, stream, kr.waitIndex)
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	defer func() { wa.Remove() }() // wa is replaced on resume

	h.setKeyHeaders(w, h.cluster.Status(), wa.StartIndex())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // a writer that cannot flush still works, just later

	h.metrics.watches.Inc()
	defer h.metrics.watches.Dec()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case ev, ok := <-wa.EventChan():
			if !ok {
				next, resumed := h.resumeWatch(st, wa, kr, stream)
				if !resumed {
					return
				}
				wa = next
				continue
			}
			// The policy may change while the watch is open: the
			// principal follows it, and a watch it no longer allows ends
			// (the client's retry gets 110).
			if p := h.policy.getAt(st, ev.Index()).pol; p != pol {
				pol, pr = p, h.principalOf(r, p)
				if !authorizeKey(pr, node, http.MethodGet, kr) {
					return
				}
			}
			if !watchVisible(pr, node, ev) {
				continue
			}
			buf, err := encodeEvent(ev)
			if err != nil {
				h.log.Error("watch: cannot encode event", "key", kr.Path, "err", err)
				return
			}
			_, werr := w.Write(buf.Bytes())
			putBuf(buf)
			if werr != nil || !kr.stream {
				return
			}
			_ = rc.Flush()
		}
	}
}

// refuseWatch answers a watch (or a wait in a lock or election queue)
// over the limits of Config: 429 with etcd's error shape, as clients match
// on errorCode (209) and HTTP tooling sees "back off".
func (h *Handler) refuseWatch(w http.ResponseWriter, r *http.Request, why int) {
	w.Header().Set("X-Etcd-Cluster-ID", hexID(h.cluster.Status().ClusterID))
	msg := "too many open watches for this client (limit " + strconv.Itoa(h.cfg.MaxWatchersPerClient) + ")"
	if why == watchMemberFull {
		msg = "too many open watches on this member, all clients together (limit " + strconv.Itoa(h.cfg.MaxWatchers) + "); retry later or watch through another member"
	}
	writeStoreError(w, r, requestError(store.EcodeInvalidField, msg), http.StatusTooManyRequests)
}

// resumeWatch replaces a watcher the store closed, when its error says the
// consumer must resume from its next index.
func (h *Handler) resumeWatch(st *store.Store, wa *store.Watcher, kr *keyRequest, stream bool) (*store.Watcher, bool) {
	err := wa.Err()
	if err == nil {
		return nil, false
	}
	if !errors.Is(err, store.ErrWatcherOverflow) && !errors.Is(err, store.ErrWatcherRestored) {
		h.log.Warn("watch ended by the store", "key", kr.Path, "err", err)
		return nil, false
	}
	next, werr := st.Watch(kr.Path, kr.Recursive, stream, wa.NextIndex())
	if werr != nil {
		h.log.Warn("cannot resume watch", "key", kr.Path, "from", wa.NextIndex(), "cause", err, "err", werr)
		return nil, false
	}
	h.metrics.watchResumes.Inc()
	return next, true
}
