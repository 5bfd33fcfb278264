package v2http

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cairnkv/cairn/store"
)

// noValue is the value of an entry whose client gave none (0.4's).
const noValue = "-"

// serveLock serves /mod/v2/lock/<name> (reference/etcd-v2.md §5.1):
//
//	POST   ?ttl=&value=&timeout=  acquire: blocks; 200, body = the lock index
//	PUT    ?ttl=&index=|value=    renew: 200, empty
//	GET    ?field=value|index     the holder's value or index; 200 empty when none
//	DELETE ?index=|value=         release: 200, empty
//
// Errors of the request are etcd's with index 0 (202 ttl, 205 timeout, 207
// neither index nor value, 208 both, 209 field or name); an unknown index
// or value, or a lock that never existed, is 100 (404). A wait that ends
// without the lock (timeout=N elapsed, timeout=0 and not first) is HTTP
// 500 with a plain-text body, as in 0.4, and its queue entry is deleted.
func (h *Handler) serveLock(w http.ResponseWriter, r *http.Request, rest string) {
	if !checkModMethod(w, r, lockMethods) {
		return
	}
	mr, perr := h.parseMod(w, r, modLock, rest, "value")
	if perr != nil {
		h.writeKeyError(w, r, perr)
		return
	}
	if !h.authorizeMod(w, r, &mr) {
		return
	}
	switch r.Method {
	case http.MethodPost:
		ttl, e := parseTTL(r, "Acquire")
		if e == nil {
			var timeout int64
			if timeout, e = parseTimeout(r); e == nil {
				h.acquire(w, r, &mr, formValue(r.Form, "value"), ttl, timeout)
				return
			}
		}
		h.writeKeyError(w, r, e)
	case http.MethodPut:
		h.renewLock(w, r, &mr)
	case http.MethodGet:
		h.getLock(w, r, &mr)
	case http.MethodDelete:
		h.releaseLock(w, r, &mr)
	}
}

// acquire puts the client in the queue of mr (or takes back its entry,
// when value names one) and answers once it heads the queue: the lock's
// POST and the leader's PUT.
//
// A wait holds store watchers and a connection for as long as it lasts: it
// counts as a watch against the per-client and member limits of /v2/keys
// (429 beyond them, and nothing queued).
func (h *Handler) acquire(w http.ResponseWriter, r *http.Request, mr *modRequest, value string, ttl uint64, timeout int64) {
	client := h.cfg.ClientID(r)
	if why := h.watchers.acquire(client); why != watchOK {
		h.refuseWatch(w, r, why)
		return
	}
	defer h.watchers.release(client)
	ctx := r.Context()
	var me queueEntry
	found := false
	if value != "" && value != noValue { // "-" is every anonymous entry's
		q, _, _, err := h.readQueueLinearizable(ctx, mr.dir)
		if err != nil {
			h.writeKeyError(w, r, err)
			return
		}
		me, found = findValue(q, value)
		if found {
			// A client back after a failover: its entry's TTL runs from its
			// last refresh, by a member that may be gone; restart it now.
			err := h.refreshEntry(ctx, me.key, ttl)
			switch {
			case isStoreCode(err, store.EcodeKeyNotFound):
				found = false // expired meanwhile: queue again
			case err != nil:
				h.writeKeyError(w, r, err)
				return
			}
		}
	}
	if !found {
		v := value
		if v == "" {
			v = noValue
		}
		var err error
		if me, err = h.enqueue(ctx, mr.dir, v, ttl); err != nil {
			h.writeKeyError(w, r, err)
			return
		}
	}
	out, err := h.acquireTurn(ctx, mr.module, mr.dir, me, ttl, timeout)
	if out == acquired && ctx.Err() != nil {
		// The client left as its turn came: nobody would hold the lock
		// until the TTL lapsed. (One that leaves after the answer is
		// written does hold it until then.)
		out = disconnect
	}
	if out == acquired {
		h.modMetrics.acquired.WithLabelValues(mr.module).Inc()
		h.log.Debug("module: acquired", "module", mr.module, "name", mr.name, "index", me.index)
		h.writeModText(w, r, http.StatusOK, me.index, strconv.FormatUint(me.index, 10))
		return
	}
	h.modMetrics.abandoned.WithLabelValues(mr.module, string(out)).Inc()
	if out != lost {
		h.removeEntry(ctx, me)
	}
	h.log.Debug("module: gave up waiting", "module", mr.module, "name", mr.name, "index", me.index, "reason", string(out), "err", err)
	what := fmt.Sprintf("%s %q", mr.module, mr.name)
	if mr.module == modLeader {
		what = fmt.Sprintf("election %q", mr.name)
	}
	switch out {
	case timedOut:
		h.writeModText(w, r, http.StatusInternalServerError, 0,
			fmt.Sprintf("failed to acquire %s: timed out after %ds (timeout=%d); queue entry %d deleted\n", what, timeout, timeout, me.index))
	case notFirst:
		h.writeModText(w, r, http.StatusInternalServerError, 0,
			fmt.Sprintf("failed to acquire %s: held by another client, and timeout=0 does not wait; queue entry %d deleted\n", what, me.index))
	case shutdown:
		h.writeModText(w, r, http.StatusServiceUnavailable, 0,
			fmt.Sprintf("failed to acquire %s: this member is shutting down; queue entry %d deleted, retry on another member\n", what, me.index))
	case lost:
		h.writeModText(w, r, http.StatusInternalServerError, 0,
			fmt.Sprintf("failed to acquire %s: queue entry %d expired or was deleted while waiting; acquire again\n", what, me.index))
	case failed:
		h.writeKeyError(w, r, err)
	case disconnect:
		// Nobody to answer.
	}
}

// entryKey is the key of the entry with index in dir.
func entryKey(dir string, index uint64) string { return dir + "/" + pad20(index) }

// pad20 is the in-order key name of index (the store's).
func pad20(i uint64) string { return fmt.Sprintf("%020d", i) }

// selectEntry finds the entry a renew or release names by index= or
// value= (exactly one of them; the caller checked). A missing one is 100.
func (h *Handler) selectEntry(ctx context.Context, mr *modRequest, index, value, op string) (queueEntry, error) {
	if index != "" {
		i, err := strconv.ParseUint(index, 10, 64)
		if err != nil {
			return queueEntry{}, requestError(store.EcodeKeyNotFound, fmt.Sprintf("%s: no entry with index %q in %s %q", op, index, mr.module, mr.name))
		}
		return queueEntry{key: entryKey(mr.dir, i), index: i}, nil
	}
	q, _, _, err := h.readQueueLinearizable(ctx, mr.dir)
	if err != nil {
		return queueEntry{}, err
	}
	e, ok := findValue(q, value)
	if !ok {
		return queueEntry{}, requestError(store.EcodeKeyNotFound, fmt.Sprintf("%s: no entry with value %q in %s %q", op, value, mr.module, mr.name))
	}
	return e, nil
}

// notFoundAs turns the store's 100 about an entry key into the module's
// (index 0, a cause naming the entry), leaving other errors alone.
func notFoundAs(err error, op string, mr *modRequest, e queueEntry) error {
	if isStoreCode(err, store.EcodeKeyNotFound) {
		return requestError(store.EcodeKeyNotFound, fmt.Sprintf("%s: no entry with index %d in %s %q", op, e.index, mr.module, mr.name))
	}
	return err
}

// renewLock is PUT: a refresh of the entry's TTL (cheap: no watcher
// wakes), whether it holds the lock or waits for it.
func (h *Handler) renewLock(w http.ResponseWriter, r *http.Request, mr *modRequest) {
	ttl, e := parseTTL(r, "Renew")
	if e != nil {
		h.writeKeyError(w, r, e)
		return
	}
	index, value := formValue(r.Form, "index"), formValue(r.Form, "value")
	if index == "" && value == "" {
		h.writeKeyError(w, r, requestError(store.EcodeIndexOrValueRequired, "Renew"))
		return
	}
	if index != "" {
		value = ""
	}
	ent, err := h.selectEntry(r.Context(), mr, index, value, "Renew")
	if err == nil {
		err = notFoundAs(h.refreshEntry(r.Context(), ent.key, ttl), "Renew", mr, ent)
	}
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	h.writeModText(w, r, http.StatusOK, 0, "")
}

// getLock is GET ?field=value|index: the holder's, read linearizably.
func (h *Handler) getLock(w http.ResponseWriter, r *http.Request, mr *modRequest) {
	field := formValue(r.Form, "field")
	if field != "" && field != "value" && field != "index" {
		h.writeKeyError(w, r, requestError(store.EcodeInvalidField, "Get"))
		return
	}
	q, at, exists, err := h.readQueueLinearizable(r.Context(), mr.dir)
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	if !exists {
		h.writeKeyError(w, r, requestError(store.EcodeKeyNotFound, fmt.Sprintf("%s %q was never used", mr.module, mr.name)))
		return
	}
	body := ""
	if len(q) > 0 {
		body = q[0].value
		if field == "index" {
			body = strconv.FormatUint(q[0].index, 10)
		}
	}
	h.writeModText(w, r, http.StatusOK, at, body)
}

// releaseLock is DELETE ?index=|value=: the entry goes, holder or waiter.
func (h *Handler) releaseLock(w http.ResponseWriter, r *http.Request, mr *modRequest) {
	index, value := formValue(r.Form, "index"), formValue(r.Form, "value")
	switch {
	case index == "" && value == "":
		h.writeKeyError(w, r, requestError(store.EcodeIndexOrValueRequired, "Release"))
		return
	case index != "" && value != "":
		h.writeKeyError(w, r, requestError(store.EcodeIndexValueMutex, "Release"))
		return
	}
	h.release(w, r, mr, index, value, "Release")
}

// release deletes the entry named by index or value: the lock's DELETE
// and the leader's. The key of an entry is its index (in-order names are
// never reused), so deleting it cannot hit a later entry; a
// compare-and-delete on the index would fail once a refresh moved the
// entry's modifiedIndex.
func (h *Handler) release(w http.ResponseWriter, r *http.Request, mr *modRequest, index, value, op string) {
	ent, err := h.selectEntry(r.Context(), mr, index, value, op)
	if err == nil {
		_, err = h.propose(r.Context(), &store.Request{Method: store.MethodDelete, Path: ent.key})
		err = notFoundAs(err, op, mr, ent)
	}
	if err != nil {
		h.writeKeyError(w, r, err)
		return
	}
	h.modMetrics.released.WithLabelValues(mr.module).Inc()
	h.log.Debug("module: released", "module", mr.module, "name", mr.name, "index", ent.index)
	h.writeModText(w, r, http.StatusOK, 0, "")
}
