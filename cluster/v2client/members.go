package v2client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Member is a member as /v2/members shows it (etcd's httptypes.Member).
type Member struct {
	ID         string   `json:"id"` // hex
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// call sends req and expects status want; the body of the answer, if v is
// not nil, is decoded into v. Any other status is the answer's error.
func (c *Client) call(ctx context.Context, req Request, want int, v any) error {
	resp, err := c.Do(ctx, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return responseError(resp)
	}
	if v != nil {
		if err := json.Unmarshal(resp.Body, v); err != nil {
			return fmt.Errorf("%s %s: unexpected answer from %s: %w", req.Method, req.Path, resp.Endpoint, err)
		}
	}
	return nil
}

// GetJSON GETs path (e.g. /v2/stats/self) and decodes a 200 answer into v.
func (c *Client) GetJSON(ctx context.Context, path string, v any) error {
	return c.call(ctx, Request{Method: http.MethodGet, Path: path}, http.StatusOK, v)
}

// Members lists the members, ordered by ID.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var list struct {
		Members []Member `json:"members"`
	}
	if err := c.GetJSON(ctx, "/v2/members", &list); err != nil {
		return nil, err
	}
	return list.Members, nil
}

// Leader is the member that leads; during an election the error is a 503
// *Error ("During election").
func (c *Client) Leader(ctx context.Context) (Member, error) {
	var m Member
	err := c.GetJSON(ctx, "/v2/members/leader", &m)
	return m, err
}

func peerURLsBody(peerURLs []string) []byte {
	b, _ := json.Marshal(map[string][]string{"peerURLs": peerURLs}) // strings: cannot fail
	return b
}

// AddMember adds a member at peerURLs; it has no name until it starts. It
// is never sent twice.
func (c *Client) AddMember(ctx context.Context, peerURLs []string) (Member, error) {
	var m Member
	req := Request{Method: http.MethodPost, Path: "/v2/members", Body: peerURLsBody(peerURLs), ContentType: "application/json"}
	err := c.call(ctx, req, http.StatusCreated, &m)
	return m, err
}

// UpdateMember changes the peer URLs of member id (hex).
func (c *Client) UpdateMember(ctx context.Context, id string, peerURLs []string) error {
	req := Request{Method: http.MethodPut, Path: "/v2/members/" + url.PathEscape(id), Body: peerURLsBody(peerURLs),
		ContentType: "application/json", Idempotent: true}
	return c.call(ctx, req, http.StatusNoContent, nil)
}

// RemoveMember removes member id (hex). It is never sent twice.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.call(ctx, Request{Method: http.MethodDelete, Path: "/v2/members/" + url.PathEscape(id)}, http.StatusNoContent, nil)
}

// TransferLeader hands the cluster's leadership to the member named to (a
// name or hex ID; "" lets the leader pick the most up-to-date voter) and
// returns the new leader: POST /cairn/v1/transfer-leader, a Cairn
// extension. Sending it twice is harmless.
func (c *Client) TransferLeader(ctx context.Context, to string) (Member, error) {
	var m Member
	req := Request{Method: http.MethodPost, Path: "/cairn/v1/transfer-leader", Idempotent: true}
	if to != "" {
		req.Body = []byte("to=" + url.QueryEscape(to))
		req.ContentType = "application/x-www-form-urlencoded"
	}
	err := c.call(ctx, req, http.StatusOK, &m)
	return m, err
}

// Health is GET /health: nil for 200 {"health":"true"}, else an error that
// says what the member answered.
func (c *Client) Health(ctx context.Context) error {
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/health"})
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
	}
	if resp.StatusCode == http.StatusOK && json.Unmarshal(resp.Body, &h) == nil && h.Health == "true" {
		return nil
	}
	return fmt.Errorf("HTTP %d %s", resp.StatusCode, string(trimSpace(resp.Body)))
}

// Version is GET /version: etcd's {"etcdserver":..,"etcdcluster":..}.
type Version struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
}

// Version asks a member for its version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	err := c.GetJSON(ctx, "/version", &v)
	return v, err
}

// SelfStats is the part of /v2/stats/self the commands and tests read.
type SelfStats struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	State      string `json:"state"` // StateLeader, StateFollower, ...
	LeaderInfo struct {
		Leader string `json:"leader"` // the leader's hex ID as this member knows it
	} `json:"leaderInfo"`
}

// SelfStats asks a member about itself.
func (c *Client) SelfStats(ctx context.Context) (SelfStats, error) {
	var s SelfStats
	err := c.GetJSON(ctx, "/v2/stats/self", &s)
	return s, err
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
