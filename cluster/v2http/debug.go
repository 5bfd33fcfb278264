package v2http

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// debugPrefix serves Go's runtime profiles (net/http/pprof: CPU, heap,
// goroutines, mutex and block contention, execution traces) on the client
// port, as etcd's --enable-pprof does on its own, to the identities that
// may take a snapshot: a node, or root with authorization on. A profile
// holds code locations and sizes, no key or value; it costs CPU while it
// runs (a CPU profile or trace for as many seconds as asked), which is why
// it is not open to every client.
const debugPrefix = "/debug/pprof/"

// serveDebug answers a request under debugPrefix (and its bare form, with
// a redirect to the index).
func (h *Handler) serveDebug(w http.ResponseWriter, r *http.Request) {
	if !h.mayTakeSnapshot(r) {
		h.writeNoAuth(w, r)
		return
	}
	switch strings.TrimPrefix(r.URL.Path, debugPrefix) {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		if r.URL.Path+"/" == debugPrefix {
			http.Redirect(w, r, debugPrefix, http.StatusMovedPermanently)
			return
		}
		pprof.Index(w, r) // the index, and the named profiles: heap, goroutine, allocs, ...
	}
}
