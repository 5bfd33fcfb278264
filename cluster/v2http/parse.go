package v2http

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/cairnkv/cairn/store"
)

// keyRequest is a parsed /v2/keys request: the store write (meaningful for
// PUT, POST and DELETE) and the read and watch options.
type keyRequest struct {
	store.Request
	sorted           bool
	wait             bool
	waitIndex        uint64
	stream           bool
	quorum           bool
	stale            bool
	noValueOnSuccess bool
}

// parseKeyRequest is etcd 2.x/3.x's parseKeyRequest (v2http/client.go): the
// same parameters, read from the same places (r.ParseForm: the urlencoded
// body of POST, PUT and PATCH first, then the query; first value wins), the
// same checks in the same order, the same error codes and causes, index 0.
// Cairn adds, after etcd's checks: stale (209 when not a bool), the size
// limits of Config (209 with a cause naming the limit; an oversized body is
// ParseForm's 210 "http: request body too large") and Config.ValidateWrite
// (209 with the validator's error as cause).
func (h *Handler) parseKeyRequest(w http.ResponseWriter, r *http.Request) (keyRequest, *store.Error) {
	var kr keyRequest
	// ParseForm reads the body of these methods only.
	if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodPatch) {
		r.Body = http.MaxBytesReader(unwrap(w), r.Body, h.cfg.MaxRequestBytes)
	}
	if err := r.ParseForm(); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// http.Server.ReadTimeout passed with the body still arriving.
			return kr, requestError(store.EcodeInvalidForm, "request body not received within the server's read timeout: "+err.Error())
		}
		return kr, requestError(store.EcodeInvalidForm, err.Error())
	}
	f := r.Form
	kr.Method = r.Method
	kr.Path = keyPath(r.URL.Path)

	var err error
	if kr.PrevIndex, err = getUint64(f, "prevIndex"); err != nil {
		return kr, requestError(store.EcodeIndexNaN, `invalid value for "prevIndex"`)
	}
	if kr.waitIndex, err = getUint64(f, "waitIndex"); err != nil {
		return kr, requestError(store.EcodeIndexNaN, `invalid value for "waitIndex"`)
	}
	bools := []struct {
		name string
		dst  *bool
	}{
		{"recursive", &kr.Recursive},
		{"sorted", &kr.sorted},
		{"wait", &kr.wait},
		{"dir", &kr.Dir},
		{"quorum", &kr.quorum},
		{"stream", &kr.stream},
		{"stale", &kr.stale}, // Cairn extension, after etcd's own
	}
	for _, b := range bools {
		if *b.dst, err = getBool(f, b.name); err != nil {
			return kr, requestError(store.EcodeInvalidField, `invalid value for "`+b.name+`"`)
		}
	}
	if kr.wait && r.Method != http.MethodGet {
		return kr, requestError(store.EcodeInvalidField, `"wait" can only be used with GET requests`)
	}
	kr.PrevValue = formValue(f, "prevValue")
	if _, ok := f["prevValue"]; ok && kr.PrevValue == "" {
		return kr, requestError(store.EcodePrevValueRequired, `"prevValue" cannot be empty`)
	}
	if kr.noValueOnSuccess, err = getBool(f, "noValueOnSuccess"); err != nil {
		return kr, requestError(store.EcodeInvalidField, `invalid value for "noValueOnSuccess"`)
	}
	// An empty or missing ttl means no TTL.
	if formValue(f, "ttl") != "" {
		if kr.TTL, err = getUint64(f, "ttl"); err != nil {
			return kr, requestError(store.EcodeTTLNaN, `invalid value for "ttl"`)
		}
		kr.HasTTL = true
	}
	if _, ok := f["prevExist"]; ok {
		pe, err := getBool(f, "prevExist")
		if err != nil {
			// Sic: etcd quotes no name here, nor for refresh.
			return kr, requestError(store.EcodeInvalidField, "invalid value for prevExist")
		}
		kr.PrevExist = store.PrevExistFalse
		if pe {
			kr.PrevExist = store.PrevExistTrue
		}
	}
	if _, ok := f["refresh"]; ok {
		if kr.Refresh, err = getBool(f, "refresh"); err != nil {
			return kr, requestError(store.EcodeInvalidField, "invalid value for refresh")
		}
		if kr.Refresh {
			if formValue(f, "value") != "" {
				return kr, requestError(store.EcodeRefreshValue, "A value was provided on a refresh")
			}
			if !kr.HasTTL {
				return kr, requestError(store.EcodeRefreshTTLRequired, "No TTL value set")
			}
		}
	}
	kr.Value = formValue(f, "value")

	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		if e := h.checkWriteLimits(&kr); e != nil {
			return kr, e
		}
		if h.cfg.ValidateWrite != nil && !kr.Refresh {
			if err := h.cfg.ValidateWrite(kr.Path, kr.Value, kr.Dir); err != nil {
				return kr, requestError(store.EcodeInvalidField, err.Error())
			}
		}
	}
	return kr, nil
}

// checkWriteLimits applies Config's key and value limits to a PUT or POST.
// Keys are checked on writes that create or replace only: a key that a
// later, lower limit makes too long can still be read and deleted. A POST
// adds one level and 21 bytes (the in-order name) beyond the checked key.
func (h *Handler) checkWriteLimits(kr *keyRequest) *store.Error {
	if n := len(kr.Path); n > h.cfg.MaxKeyBytes {
		return requestError(store.EcodeInvalidField,
			"key is "+strconv.Itoa(n)+" bytes, over the limit of "+strconv.Itoa(h.cfg.MaxKeyBytes)+" bytes")
	}
	if d := keyDepth(kr.Path); d > h.cfg.MaxKeyDepth {
		return requestError(store.EcodeInvalidField,
			"key is "+strconv.Itoa(d)+" levels deep, over the limit of "+strconv.Itoa(h.cfg.MaxKeyDepth)+" levels")
	}
	if n := int64(len(kr.Value)); n > h.cfg.MaxValueBytes {
		return requestError(store.EcodeInvalidField,
			`"value" is `+strconv.FormatInt(n, 10)+" bytes, over the limit of "+strconv.FormatInt(h.cfg.MaxValueBytes, 10)+" bytes")
	}
	return nil
}

// keyPath is etcd's path.Join("/", urlPath[len("/v2/keys"):]). Routing
// guarantees urlPath is "/v2/keys" or starts with "/v2/keys/", and
// path.Clean does not allocate for a path that is already clean.
func keyPath(urlPath string) string {
	p := urlPath[len(keysPrefix):]
	if p == "" {
		return "/"
	}
	return path.Clean(p)
}

// keyDepth is the number of segments of a clean path ("/" has none).
func keyDepth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// formValue is r.FormValue on a parsed form: the first value or "".
func formValue(f url.Values, key string) string {
	if vs := f[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// getUint64 is etcd's: 0 when absent, the first value parsed in base 10
// otherwise (so "prevIndex=" is an error).
func getUint64(f url.Values, key string) (uint64, error) {
	if vs, ok := f[key]; ok && len(vs) > 0 {
		return strconv.ParseUint(vs[0], 10, 64)
	}
	return 0, nil
}

// getBool is etcd's: false when absent, strconv.ParseBool of the first value
// otherwise (so "recursive=" is an error).
func getBool(f url.Values, key string) (bool, error) {
	if vs, ok := f[key]; ok && len(vs) > 0 {
		return strconv.ParseBool(vs[0])
	}
	return false, nil
}
