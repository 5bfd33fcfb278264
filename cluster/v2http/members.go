package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cairnkv/cairn/cluster"
)

// member is etcd's httptypes.Member. Lists are never null.
type member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

func newMember(m cluster.Member) member {
	return member{
		ID:         hexID(m.ID),
		Name:       m.Name,
		PeerURLs:   append(make([]string, 0, len(m.PeerURLs)), m.PeerURLs...),
		ClientURLs: append(make([]string, 0, len(m.ClientURLs)), m.ClientURLs...),
	}
}

// sortedMembers is the membership ordered by ID, as etcd lists it.
func (h *Handler) sortedMembers() []cluster.Member {
	ms := slices.Clone(h.cluster.Members())
	slices.SortFunc(ms, func(a, b cluster.Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return ms
}

// serveMachines is etcd 2.x's /v2/machines: the client URLs of every member,
// sorted, joined by ", ", as text. etcd leaves the Content-Type to Go's
// sniffing, which gives the same value for a non-empty body.
func (h *Handler) serveMachines(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet, http.MethodHead) {
		return
	}
	var urls []string
	for _, m := range h.cluster.Members() {
		urls = append(urls, m.ClientURLs...)
	}
	slices.Sort(urls)
	writeBody(w, r, http.StatusOK, "text/plain; charset=utf-8", []byte(strings.Join(urls, ", ")))
}

// serveMembers is etcd 2.x's membersHandler: GET lists the members or the
// leader; POST, PUT and DELETE change the membership through MemberAdmin.
// As in etcd, the X-Etcd-Cluster-ID header is set after the method check: a
// 405 does not carry it.
func (h *Handler) serveMembers(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut) {
		return
	}
	// etcd's hasWriteRootAccess: with authorization on, changes need root.
	if r.Method != http.MethodGet && !h.principal(r).Root() {
		h.writeNoAuth(w, r)
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", hexID(h.cluster.Status().ClusterID))
	sub := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, membersPrefix), "/")
	if r.Method == http.MethodGet {
		switch sub {
		case "":
			ms := h.sortedMembers()
			list := struct {
				Members []member `json:"members"`
			}{Members: make([]member, 0, len(ms))}
			for _, m := range ms {
				list.Members = append(list.Members, newMember(m))
			}
			writeJSON(w, r, http.StatusOK, list)
		case "leader":
			id := h.cluster.Status().LeaderID
			for _, m := range h.cluster.Members() {
				if id != 0 && m.ID == id {
					writeJSON(w, r, http.StatusOK, newMember(m))
					return
				}
			}
			// No leader, or one this node does not know yet.
			writeHTTPError(w, r, http.StatusServiceUnavailable, "During election")
		default:
			writeHTTPError(w, r, http.StatusNotFound, "Not found")
		}
		return
	}
	if h.admin == nil {
		writeHTTPError(w, r, http.StatusNotImplemented, "membership changes are not supported by this server")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	switch r.Method {
	case http.MethodPost:
		urls, ok := h.readPeerURLs(w, r)
		if !ok {
			return
		}
		m, err := h.admin.AddMember(ctx, urls)
		if err != nil {
			h.writeMemberError(w, r, "add", "", err)
			return
		}
		writeJSON(w, r, http.StatusCreated, newMember(m))
	case http.MethodPut:
		id, ok := memberID(w, r, sub)
		if !ok {
			return
		}
		urls, ok := h.readPeerURLs(w, r)
		if !ok {
			return
		}
		if err := h.admin.UpdateMember(ctx, id, urls); err != nil {
			h.writeMemberError(w, r, "update", hexID(id), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		id, ok := memberID(w, r, sub)
		if !ok {
			return
		}
		if err := h.admin.RemoveMember(ctx, id); err != nil {
			h.writeMemberError(w, r, "remove", hexID(id), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// memberID is etcd's getID: no ID is 405 (without Allow, as etcd), a
// malformed one 404.
func memberID(w http.ResponseWriter, r *http.Request, s string) (uint64, bool) {
	if s == "" {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return 0, false
	}
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		writeHTTPError(w, r, http.StatusNotFound, "No such member: "+s)
		return 0, false
	}
	return id, true
}

// readPeerURLs reads etcd's {"peerURLs":[...]} body: Content-Type must be
// application/json (415), the URLs valid (400), returned sorted. Cairn is
// TLS-only, so peer URLs must be https (etcd also takes http, unix, unixs).
//
// Deviation: etcd 2.3.8 wants the Content-Type to be the exact string
// "application/json"; like etcd 3.x, parameters (charset) and case are
// accepted. The 415 message names the header as sent, as 2.3.8 does.
func (h *Handler) readPeerURLs(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		writeHTTPError(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Bad Content-Type %s, accept application/json", ct))
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(unwrap(w), r.Body, h.cfg.MaxRequestBytes))
	if err != nil {
		writeHTTPError(w, r, http.StatusBadRequest, err.Error())
		return nil, false
	}
	var req struct {
		PeerURLs []string `json:"peerURLs"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		writeHTTPError(w, r, http.StatusBadRequest, err.Error())
		return nil, false
	}
	urls, err := validPeerURLs(req.PeerURLs)
	if err != nil {
		writeHTTPError(w, r, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return urls, true
}

// validPeerURLs is etcd's types.NewURLs, restricted to https.
func validPeerURLs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("no valid URLs given")
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		if u.Scheme != "https" {
			return nil, fmt.Errorf("URL scheme must be https: %s", s)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, fmt.Errorf(`URL address does not have the form "host:port": %s`, s)
		}
		if u.Path != "" {
			return nil, fmt.Errorf("URL must not contain a path: %s", s)
		}
		out = append(out, u.String())
	}
	slices.Sort(out)
	return out, nil
}

// writeMemberError maps a MemberAdmin error as documented on MemberAdmin.
func (h *Handler) writeMemberError(w http.ResponseWriter, r *http.Request, op, id string, err error) {
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		switch code := sc.StatusCode(); code {
		case http.StatusNotFound:
			writeHTTPError(w, r, code, "No such member: "+id)
			return
		case http.StatusGone:
			writeHTTPError(w, r, code, "Member permanently removed: "+id)
			return
		default:
			if code >= 400 && code < 500 {
				writeHTTPError(w, r, code, err.Error())
				return
			}
		}
	}
	h.log.Warn("membership change failed", "op", op, "member", id, "err", err)
	writeHTTPError(w, r, http.StatusInternalServerError, "Internal Server Error")
}
