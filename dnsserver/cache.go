package dnsserver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Generationer is implemented by a Source whose answers can be cached:
// Generation changes whenever Lookup, Exists or ByIP may answer otherwise
// (discovery.Index does). A Source without it is never cached.
type Generationer interface {
	Generation() uint64
}

// Answer cache sizing.
const (
	// cacheEntries bounds the questions one UDP socket keeps. Past it, the
	// cache is emptied: a flood of distinct names (random subdomains) costs
	// the misses it would cost anyway, and memory stays bounded.
	cacheEntries = 8192
	// cacheRotations is how many shuffled orders of one answer are kept.
	// Each is a full Shuffle: clients see the instances in one of up to
	// this many random orders, served round-robin, until the index changes
	// or a TTL ticks (at most every second for registrations whose
	// remaining TTL is below MaxTTL, which recomputes them).
	cacheRotations = 8
)

// answerCache holds packed UDP answers of plain queries (parsePlain). One
// belongs to each UDP socket's loop, which alone reads and writes it: the
// hot path takes no lock and shares no cache line with another socket.
type answerCache struct {
	entries map[string]*cachedAnswer
	key     []byte // scratch for building keys without allocating
}

// cachedAnswer is one question's packed answers. It is correct while the
// source's generation is gen and the time is before until (zero: no limit).
type cachedAnswer struct {
	variants  [][]byte // packed responses, the ID to be patched
	next      int
	gen       uint64
	until     time.Time
	responses prometheus.Counter // cairn_dns_responses_total{type, rcode, udp}
	truncated bool
}

func newAnswerCache() *answerCache {
	return &answerCache{entries: make(map[string]*cachedAnswer), key: make([]byte, 0, 300)}
}

// keyOf is the cache key of q for an answer sized to size: the question as
// received (so 0x20 case is echoed as sent), the header and EDNS bits the
// answer depends on, and the size. It returns the cache's scratch buffer.
func (c *answerCache) keyOf(q *plainQuery, size int) []byte {
	k := append(c.key[:0], q.question...)
	k = append(k, q.bits, byte(size>>8), byte(size))
	c.key = k
	return k
}

// get returns the entry for key if it is still correct at now with gen.
func (c *answerCache) get(key []byte, gen uint64, now time.Time) *cachedAnswer {
	e := c.entries[string(key)] // no allocation: the compiler converts in place
	if e == nil || e.gen != gen || (!e.until.IsZero() && !now.Before(e.until)) {
		return nil
	}
	return e
}

// pick returns the next variant of e with its ID set to id.
func (e *cachedAnswer) pick(id uint16) []byte {
	b := e.variants[e.next]
	if e.next++; e.next == len(e.variants) {
		e.next = 0
	}
	b[0], b[1] = byte(id>>8), byte(id)
	return b
}

// put stores e under key.
func (c *answerCache) put(key []byte, e *cachedAnswer) {
	if old := c.entries[string(key)]; old != nil {
		*old = *e // keep the key's string
		return
	}
	if len(c.entries) >= cacheEntries {
		clear(c.entries)
	}
	c.entries[string(key)] = e
}
