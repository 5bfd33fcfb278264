package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// memberInfo is what raft's configuration does not know about a member.
type memberInfo struct {
	Name       string
	PeerURLs   []string
	ClientURLs []string
	Features   uint64
}

// Features a member announces (memberCmd.Features, a bit set): what its
// binary can apply. A leader writes an entry that needs a feature only
// when every member of the configuration has announced it, so that a
// member still running an older binary during a rolling upgrade never
// meets an entry it cannot apply.
const (
	featureBatch uint64 = 1 << iota // cmdBatch entries (refresh.go)

	// ownFeatures are this binary's.
	ownFeatures = featureBatch
)

// memberCmd is the payload of a cmdMember entry.
type memberCmd struct {
	Remove     bool     `json:"remove,omitempty"`
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	// ClusterID, in the first member entry of a cluster, names it.
	ClusterID uint64 `json:"clusterID,omitempty"`
	// Features are the member's binary's (featureBatch...); an older
	// binary sends none and ignores the field.
	Features uint64 `json:"features,omitempty"`
}

// joinRequest is what a starting member tells the leader about itself.
type joinRequest struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	PeerAddr   string   `json:"peerAddr"`
	ClientURLs []string `json:"clientURLs"`
	ClusterID  uint64   `json:"clusterID"`
	Features   uint64   `json:"features,omitempty"`
}

type memberUpdate struct {
	ID       uint64   `json:"id"`
	PeerURLs []string `json:"peerURLs"`
}

// MemberError is a membership request refused for the client's reason; its
// Status is the HTTP status etcd answers with (404, 409, 410, 400).
type MemberError struct {
	Status int
	Msg    string
}

func (e *MemberError) Error() string   { return e.Msg }
func (e *MemberError) StatusCode() int { return e.Status }

func (f *fsm) applyMember(c *memberCmd) {
	f.metaMu.Lock()
	defer f.metaMu.Unlock()
	if f.clusterID.Load() == 0 && c.ClusterID != 0 {
		f.clusterID.Store(c.ClusterID)
	}
	if c.Remove {
		delete(f.members, c.ID)
		f.removed[c.ID] = true
		return
	}
	f.members[c.ID] = memberInfo{Name: c.Name, PeerURLs: c.PeerURLs, ClientURLs: c.ClientURLs, Features: c.Features}
}

func (f *fsm) member(id uint64) (memberInfo, bool) {
	f.metaMu.RLock()
	defer f.metaMu.RUnlock()
	m, ok := f.members[id]
	return m, ok
}

func (f *fsm) isRemoved(id uint64) bool {
	f.metaMu.RLock()
	defer f.metaMu.RUnlock()
	return f.removed[id]
}

// Members lists the voters of the raft configuration with their replicated
// names and URLs. A member added through the API that has not started yet
// has no name and no client URLs, as in etcd.
func (n *Node) Members() []Member {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		id, err := strconv.ParseUint(string(s.ID), 16, 64)
		if err != nil {
			continue
		}
		m := Member{ID: id, PeerURLs: []string{"https://" + string(s.Address)}, ClientURLs: []string{}}
		if info, ok := n.fsm.member(id); ok {
			m.Name = info.Name
			if len(info.ClientURLs) > 0 {
				m.ClientURLs = slices.Clone(info.ClientURLs)
			}
		}
		if id == n.id && m.Name == "" { // not announced yet: this node knows itself
			m.Name, m.ClientURLs = n.cfg.Name, slices.Clone(n.cfg.ClientURLs)
		}
		out = append(out, m)
	}
	return out
}

// AddMember adds a member at the given peer URLs (etcd's POST /v2/members).
// It has no name, and no vote, until it starts and joins with --peers.
func (n *Node) AddMember(ctx context.Context, peerURLs []string) (Member, error) {
	b, _ := json.Marshal(peerURLs)
	ans, err := n.leaderRequest(ctx, opAddMember, b)
	if err != nil {
		return Member{}, err
	}
	var m Member
	if err := json.Unmarshal(ans, &m); err != nil {
		return Member{}, fmt.Errorf("cluster: bad add-member answer: %w", err)
	}
	return m, nil
}

// RemoveMember removes member id from the cluster.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	_, err := n.leaderRequest(ctx, opRemoveMember, binary.AppendUvarint(nil, id))
	return err
}

// UpdateMember changes the peer URLs of member id.
func (n *Node) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	b, _ := json.Marshal(memberUpdate{ID: id, PeerURLs: peerURLs})
	_, err := n.leaderRequest(ctx, opUpdateMember, b)
	return err
}

// addedMemberAt is the ID of the member added through the API at peer
// address addr that has not started yet (it has no name), or 0.
func (n *Node) addedMemberAt(addr string) uint64 {
	for _, m := range n.Members() {
		if m.Name == "" && slices.Equal(m.PeerURLs, []string{"https://" + addr}) {
			return m.ID
		}
	}
	return 0
}

// askAddedMemberID asks the peers, once each, whether a member was added
// through the API at peerAddr (etcd's `member add`); a new member starting
// there takes that member's ID, so that the ID `member add` printed stays
// the member's ID once it joins. 0 when none was added or no peer
// answered: the member then gets a random ID and, joining, replaces the
// added one (whose ID then changes).
func askAddedMemberID(netw Network, peers []string, peerAddr string, timeout time.Duration, log *slog.Logger) uint64 {
	for _, p := range peers {
		ctx, cancel := context.WithTimeout(context.Background(), min(timeout, 2*time.Second))
		ans, err := netw.Call(ctx, p, append([]byte{opAddedMember, 0}, peerAddr...))
		cancel()
		if err == nil {
			ans, err = decodeAnswer(ans)
		}
		if err != nil {
			log.Debug("asking a peer for an added member at this address failed", "peer", p, "err", err)
			continue
		}
		id, k := binary.Uvarint(ans)
		if k > 0 && id != 0 {
			log.Info("taking the ID this member was added with", "member", hexID(id), "via", p)
		}
		return id
	}
	return 0
}

// leaderRequest runs op on the leader, here or forwarded.
func (n *Node) leaderRequest(ctx context.Context, op byte, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	return n.callLeader(ctx, op, 0, payload)
}

// peerAddrOf turns etcd-style peer URLs into the raft address (host:port of
// the first URL).
func peerAddrOf(urls []string) (string, error) {
	if len(urls) == 0 {
		return "", &MemberError{Status: 400, Msg: "no peer URLs given"}
	}
	u, err := url.Parse(urls[0])
	if err != nil || u.Host == "" {
		return "", &MemberError{Status: 400, Msg: fmt.Sprintf("bad peer URL %q: want https://host:port", urls[0])}
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", &MemberError{Status: 400, Msg: fmt.Sprintf("bad peer URL %q: want https://host:port", urls[0])}
	}
	return u.Host, nil
}

func (n *Node) servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	return f.Configuration().Servers, nil
}

func (n *Node) addMemberLocal(ctx context.Context, peerURLs []string) (Member, error) {
	addr, err := peerAddrOf(peerURLs)
	if err != nil {
		return Member{}, err
	}
	servers, err := n.servers()
	if err != nil {
		return Member{}, err
	}
	for _, s := range servers {
		if string(s.Address) == addr {
			return Member{}, &MemberError{Status: 409, Msg: "Peer URLs already exists"}
		}
	}
	// A non-voter until it starts and joins: adding a voter that is not
	// running yet would need it for quorum (with one member, at once).
	id := randomID()
	if err := n.changeServers(ctx, 0, id, addr, false); err != nil {
		return Member{}, err
	}
	urls := []string{"https://" + addr}
	if err := n.proposeMember(ctx, &memberCmd{ID: id, PeerURLs: urls}); err != nil {
		return Member{}, err
	}
	return Member{ID: id, PeerURLs: urls, ClientURLs: []string{}}, nil
}

func (n *Node) removeMemberLocal(ctx context.Context, id uint64) error {
	servers, err := n.servers()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == raft.ServerID(hexID(id)) }) {
		if n.fsm.isRemoved(id) {
			return &MemberError{Status: 410, Msg: "Member permanently removed: " + hexID(id)}
		}
		return &MemberError{Status: 404, Msg: "No such member: " + hexID(id)}
	}
	// The metadata goes first: once this leader removes itself it cannot
	// propose anything.
	if err := n.proposeMember(ctx, &memberCmd{Remove: true, ID: id}); err != nil {
		return err
	}
	f := n.raft.RemoveServer(raft.ServerID(hexID(id)), 0, n.timeout(ctx))
	if err := f.Error(); err != nil {
		return raftError(err)
	}
	n.cfg.Logger.Info("removed member", "member", hexID(id))
	return nil
}

func (n *Node) updateMemberLocal(ctx context.Context, id uint64, peerURLs []string) error {
	addr, err := peerAddrOf(peerURLs)
	if err != nil {
		return err
	}
	servers, err := n.servers()
	if err != nil {
		return err
	}
	found, voter := false, false
	for _, s := range servers {
		if s.ID == raft.ServerID(hexID(id)) {
			found, voter = true, s.Suffrage == raft.Voter
		} else if string(s.Address) == addr {
			return &MemberError{Status: 409, Msg: "Peer URLs already exists"}
		}
	}
	if !found {
		return &MemberError{Status: 404, Msg: "No such member: " + hexID(id)}
	}
	if err := n.changeServers(ctx, 0, id, addr, voter); err != nil {
		return err
	}
	info, _ := n.fsm.member(id)
	return n.proposeMember(ctx, &memberCmd{ID: id, Name: info.Name, PeerURLs: []string{"https://" + addr}, ClientURLs: info.ClientURLs, Features: info.Features})
}

// admitMember is the leader's side of a join: a starting member, new or
// restarted, tells who it is. A new member becomes a voter; a member at the
// address of another one (a node that lost its data dir, or a member added
// through the API that now starts) replaces it. Then its metadata is
// replicated.
func (n *Node) admitMember(ctx context.Context, jr joinRequest) error {
	if jr.ID == 0 || jr.PeerAddr == "" {
		return &MemberError{Status: 400, Msg: "join request without member id or peer address"}
	}
	if n.fsm.isRemoved(jr.ID) {
		return &MemberError{Status: 410, Msg: fmt.Sprintf("member %s was removed from the cluster; to add it again, empty its data dir and start it with --peers", hexID(jr.ID))}
	}
	servers, err := n.servers()
	if err != nil {
		return err
	}
	var replace uint64
	known := false
	for _, s := range servers {
		id, _ := strconv.ParseUint(string(s.ID), 16, 64)
		switch {
		case id == jr.ID:
			known = string(s.Address) == jr.PeerAddr && s.Suffrage == raft.Voter
		case string(s.Address) == jr.PeerAddr:
			replace = id
		}
	}
	if !known {
		if err := n.changeServers(ctx, replace, jr.ID, jr.PeerAddr, true); err != nil {
			return err
		}
		n.cfg.Logger.Info("admitted member", "member", hexID(jr.ID), "name", jr.Name, "peer", jr.PeerAddr, "replaced", hexID(replace))
	}
	want := memberCmd{ID: jr.ID, Name: jr.Name, PeerURLs: []string{"https://" + jr.PeerAddr}, ClientURLs: jr.ClientURLs, Features: jr.Features}
	if n.fsm.clusterID.Load() == 0 {
		want.ClusterID = jr.ClusterID
	}
	if info, ok := n.fsm.member(jr.ID); ok && info.Name == want.Name && info.Features == want.Features &&
		slices.Equal(info.PeerURLs, want.PeerURLs) && slices.Equal(info.ClientURLs, want.ClientURLs) {
		return nil
	}
	return n.proposeMember(ctx, &want)
}

// changeServers removes member old (when not 0) and adds, re-addresses or
// promotes member id at addr, as a voter or not.
func (n *Node) changeServers(ctx context.Context, old, id uint64, addr string, voter bool) error {
	if old != 0 {
		if err := n.proposeMember(ctx, &memberCmd{Remove: true, ID: old}); err != nil {
			return err
		}
		if err := n.raft.RemoveServer(raft.ServerID(hexID(old)), 0, n.timeout(ctx)).Error(); err != nil {
			return raftError(err)
		}
	}
	add := n.raft.AddNonvoter
	if voter {
		add = n.raft.AddVoter
	}
	if err := add(raft.ServerID(hexID(id)), raft.ServerAddress(addr), 0, n.timeout(ctx)).Error(); err != nil {
		return raftError(err)
	}
	return nil
}

func (n *Node) proposeMember(ctx context.Context, c *memberCmd) error {
	cmd := command{typ: cmdMember, now: n.leaderNow(), member: c}
	if err := n.raft.Apply(cmd.encode(), n.timeout(ctx)).Error(); err != nil {
		return raftError(err)
	}
	return nil
}

// hasConfiguration reports whether this node is part of a cluster: it was
// bootstrapped, or a leader has replicated a configuration to it.
func (n *Node) hasConfiguration() bool {
	f := n.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// normalizePeers drops this node's own address and duplicates, and sorts.
func normalizePeers(peers []string, self string) []string {
	var out []string
	for _, p := range peers {
		p = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(p, "https://"), "http://"))
		if p != "" && p != self && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
