package cluster

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// memberMeta is this member's identity, fixed when its data dir is created.
type memberMeta struct {
	ID        string `json:"id"`
	ClusterID string `json:"clusterID"`
	Name      string `json:"name"`
}

const metaFile = "member.json"

// loadOrCreateMeta reads <dir>/member.json, creating it on first start with
// the member ID newID gives (a random one when it gives 0) and a random
// cluster ID.
func loadOrCreateMeta(dir, name string, newID func() uint64) (memberMeta, uint64, uint64, error) {
	p := filepath.Join(dir, metaFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		id := newID()
		if id == 0 {
			id = randomID()
		}
		m := memberMeta{ID: hexID(id), ClusterID: hexID(randomID()), Name: name}
		b, _ = json.Marshal(m)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return m, 0, 0, fmt.Errorf("cluster: write %s: %w", p, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return m, 0, 0, fmt.Errorf("cluster: write %s: %w", p, err)
		}
		b, err = os.ReadFile(p)
	}
	if err != nil {
		return memberMeta{}, 0, 0, fmt.Errorf("cluster: read %s: %w", p, err)
	}
	var m memberMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, 0, 0, fmt.Errorf("cluster: %s is corrupt (%v); restore the data dir from a backup", p, err)
	}
	id, err1 := strconv.ParseUint(m.ID, 16, 64)
	cid, err2 := strconv.ParseUint(m.ClusterID, 16, 64)
	if err1 != nil || err2 != nil || id == 0 {
		return m, 0, 0, fmt.Errorf("cluster: %s has invalid ids; restore the data dir from a backup", p)
	}
	return m, id, cid, nil
}

func randomID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// hexID formats a member or cluster ID as etcd does: lower-case hex.
func hexID(id uint64) string { return strconv.FormatUint(id, 16) }
