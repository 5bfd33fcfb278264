package cluster

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cairnkv/cairn/store"
)

// The FSM snapshot stream, format 1: what raft's snapshot store holds, what
// a backup file embeds byte for byte (see backup.go), and what a follower
// receives when it installs a snapshot.
//
//	magic "CAIRNFS1"
//	uint32 big-endian length n, then n bytes of snapHeader as JSON
//	the store's own snapshot stream ("CAIRNST1" ... CRC-32C, store/snapshot.go)
//
// This file is the only one that writes or reads the first two parts:
// encodeSnapHeader and decodeSnapHeader. The header has no checksum of its
// own: a torn header fails to decode as JSON, and the store stream behind
// it carries a CRC over the data. A new format takes a new magic; a reader
// refuses a magic it does not know rather than guess.
const snapMagic = "CAIRNFS1"

// snapPrefixLen is the magic and the length before the header JSON.
const snapPrefixLen = len(snapMagic) + 4

// maxSnapHeader bounds the header a reader accepts (it lists the members,
// so it is small; the bound only stops a corrupt length from allocating).
const maxSnapHeader = 64 << 20

// snapHeader is the FSM's own state beside the store.
type snapHeader struct {
	// Applied is the raft index the FSM had applied.
	Applied uint64 `json:"applied"`
	// LastNow is the latest proposer time applied, in unix nanoseconds.
	LastNow int64 `json:"lastNow"`
	// ClusterID is the cluster's ID (0 before the first member entry).
	ClusterID uint64 `json:"clusterID"`
	// Members are the replicated member metadata, by ascending ID.
	Members []memberCmd `json:"members"`
	// Removed are the IDs of removed members, ascending.
	Removed []uint64 `json:"removed,omitempty"`
}

// errBadSnapHeader prefixes every error of decodeSnapHeader.
var errBadSnapHeader = errors.New("not a Cairn snapshot")

// encodeSnapHeader renders the start of an FSM snapshot stream: magic,
// length, header. Members and removed IDs are written in ascending ID order
// (the FSM keeps them in maps), so equal states give equal bytes.
func encodeSnapHeader(h snapHeader) ([]byte, error) {
	h.Members = slices.SortedFunc(slices.Values(h.Members), func(a, b memberCmd) int { return cmp.Compare(a.ID, b.ID) })
	h.Removed = slices.Sorted(slices.Values(h.Removed))
	j, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode snapshot header: %w", err)
	}
	if len(j) > maxSnapHeader {
		return nil, fmt.Errorf("cluster: snapshot header of %d bytes is over the limit of %d", len(j), maxSnapHeader)
	}
	b := make([]byte, 0, snapPrefixLen+len(j))
	b = append(b, snapMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(j)))
	return append(b, j...), nil
}

// decodeSnapHeader reads the start of an FSM snapshot stream written by
// encodeSnapHeader, and returns the header and how many bytes it took: r is
// then at the store's stream. It reads exactly those bytes from r.
func decodeSnapHeader(r io.Reader) (snapHeader, int64, error) {
	var h snapHeader
	var pre [snapPrefixLen]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return h, 0, fmt.Errorf("%w: %v", errBadSnapHeader, err)
	}
	if string(pre[:len(snapMagic)]) != snapMagic {
		return h, 0, fmt.Errorf("%w: it does not start with %q", errBadSnapHeader, snapMagic)
	}
	n := binary.BigEndian.Uint32(pre[len(snapMagic):])
	if n > maxSnapHeader {
		return h, 0, fmt.Errorf("%w: header of %d bytes is over the limit of %d", errBadSnapHeader, n, maxSnapHeader)
	}
	// Read, not allocated up front: a corrupt length costs what the
	// stream holds, not the 64 MiB it may claim.
	j, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err == nil && len(j) < int(n) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return h, 0, fmt.Errorf("%w: header cut short: %v", errBadSnapHeader, err)
	}
	if err := json.Unmarshal(j, &h); err != nil {
		return h, 0, fmt.Errorf("%w: bad header: %v", errBadSnapHeader, err)
	}
	return h, int64(snapPrefixLen) + int64(n), nil
}

// capture takes the FSM's state for a snapshot or a backup: the header and
// the store at one point. Raft calls Snapshot between Applies, but a backup
// captures while entries apply, hence the order: applied first (every entry
// up to it is in the store, as the FSM advances after it applies; a few
// later ones may be too, which the store's own index pins down), then the
// store, then lastNow, which never decreases, so it is at least the time of
// every write in the store's copy and a restored leader never stamps an
// earlier one. The member table is read at about the same moment.
func (f *fsm) capture() (snapHeader, *store.Snapshot) {
	h := snapHeader{Applied: f.applied.Load()}
	snap := f.store.Snapshot()
	h.LastNow = f.lastNow.Load()
	h.ClusterID = f.clusterID.Load()
	f.metaMu.RLock()
	for id, m := range f.members {
		h.Members = append(h.Members, memberCmd{ID: id, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Features: m.Features})
	}
	for id := range f.removed {
		h.Removed = append(h.Removed, id)
	}
	f.metaMu.RUnlock()
	return h, snap
}

// restoreHeader replaces the FSM's own state with a snapshot's, once the
// store has been restored from the same snapshot.
func (f *fsm) restoreHeader(h snapHeader) {
	f.metaMu.Lock()
	f.members = make(map[uint64]memberInfo, len(h.Members))
	for _, m := range h.Members {
		f.members[m.ID] = memberInfo{Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Features: m.Features}
	}
	f.removed = make(map[uint64]bool, len(h.Removed))
	for _, id := range h.Removed {
		f.removed[id] = true
	}
	f.metaMu.Unlock()
	f.lastNow.Store(h.LastNow)
	f.clusterID.Store(h.ClusterID)
	f.advance(h.Applied)
}
