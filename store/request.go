package store

import "time"

// Methods of a Request: the HTTP verbs of /v2/keys that change the store.
const (
	MethodPut    = "PUT"
	MethodPost   = "POST"
	MethodDelete = "DELETE"
)

// PrevExist is the tri-state prevExist condition of a PUT.
type PrevExist uint8

// PrevExist values; the zero value means the parameter was not given.
const (
	PrevExistUnset PrevExist = iota
	PrevExistTrue
	PrevExistFalse
)

// Request is one write to the key space, as parsed from /v2/keys and carried
// through raft. It holds no time: the proposer's clock arrives separately, as
// the now argument of Apply, so every replica computes the same expiration.
type Request struct {
	Method    string
	Path      string
	Value     string
	Dir       bool
	PrevValue string
	PrevIndex uint64
	PrevExist PrevExist
	// HasTTL reports whether ttl was given; without it the node is permanent.
	// TTL 0 with HasTTL expires the node at the next expiry sweep, as in etcd.
	HasTTL    bool
	TTL       uint64
	Refresh   bool
	Recursive bool
}

// expireTime turns the request's TTL into an absolute time at now.
func (r *Request) expireTime(now time.Time) time.Time {
	if !r.HasTTL {
		return time.Time{}
	}
	// Clamp absurd TTLs so the addition cannot overflow into the past.
	const maxTTL = uint64(100 * 365 * 24 * 3600)
	ttl := r.TTL
	if ttl > maxTTL {
		ttl = maxTTL
	}
	return now.Add(time.Duration(ttl) * time.Second)
}

// Apply performs r at time now (the proposer's clock, carried in the raft
// entry) following etcd 2.x's dispatch (reference §1.2.3). It is what every
// replica runs for a committed write: deterministic for a given store state,
// request and now.
func (s *Store) Apply(r *Request, now time.Time) (*Event, error) {
	exp := TTLOptions{ExpireTime: r.expireTime(now), Refresh: r.Refresh}
	switch r.Method {
	case MethodPost:
		return s.Create(r.Path, r.Dir, r.Value, true, exp, now)
	case MethodPut:
		switch {
		case r.PrevExist == PrevExistTrue && r.PrevIndex == 0 && r.PrevValue == "":
			return s.Update(r.Path, r.Value, exp, now)
		case r.PrevExist == PrevExistTrue:
			return s.CompareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Value, exp, now)
		case r.PrevExist == PrevExistFalse:
			return s.Create(r.Path, r.Dir, r.Value, false, exp, now)
		case r.PrevIndex > 0 || r.PrevValue != "":
			return s.CompareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Value, exp, now)
		default:
			return s.Set(r.Path, r.Dir, r.Value, exp, now)
		}
	case MethodDelete:
		if r.PrevIndex > 0 || r.PrevValue != "" {
			return s.CompareAndDelete(r.Path, r.PrevValue, r.PrevIndex, now)
		}
		return s.Delete(r.Path, r.Dir, r.Recursive, now)
	}
	return nil, NewError(EcodeInvalidField, "unknown method "+r.Method, s.Index())
}
