package discovery

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cairnkv/cairn/store"
)

// A catalog is the registrations of a key tree as an operator lists them
// (Consul's `catalog services` / `health service`): services, their
// instances, and the DNS names that answer them.

// Entry is one registration of a catalog.
type Entry struct {
	Key string
	// Name is the instance's own DNS name (its A/AAAA or CNAME, and SRV),
	// e.g. web-1.web.cairn.internal.
	Name string
	// Service is the service's name relative to the zone (web, api.prod):
	// the instance's name without its first label; "" for a registration
	// at the zone's apex.
	Service string
	// Instance is the first label of Name, e.g. web-1.
	Instance string
	Record   Record
	// TTL is the remaining time-to-live in whole seconds, as the member
	// reported it: the key's, or that of a directory above it when that is
	// shorter; 0 for a key that does not expire.
	TTL int64
	// Err says why the key is ignored by DNS (a value that is not a valid
	// record, or a key that makes no DNS name); the other fields but Key
	// may then be empty.
	Err error
}

// Catalog lists the registrations in the tree n (a recursive read of a
// directory at or below Dir), in key order.
func (c Config) Catalog(n *store.NodeExtern) []Entry {
	var out []Entry
	var walk func(n *store.NodeExtern, ttl int64)
	walk = func(n *store.NodeExtern, ttl int64) {
		if n.TTL > 0 && (ttl == 0 || n.TTL < ttl) {
			ttl = n.TTL
		}
		if n.Dir {
			for _, child := range n.Nodes {
				walk(child, ttl)
			}
			return
		}
		e := Entry{Key: n.Key, TTL: ttl}
		value := ""
		if n.Value != nil {
			value = *n.Value
		}
		e.Record, e.Err = ParseRecord(value)
		name, ok := c.Name(n.Key)
		if !ok && e.Err == nil {
			e.Err = errNoName
		}
		e.Name = name
		e.Instance, e.Service, _ = c.split(name)
		out = append(out, e)
	}
	if n != nil {
		walk(n, 0)
	}
	return out
}

type catalogError string

func (e catalogError) Error() string { return string(e) }

const errNoName = catalogError("the key makes no DNS name (a segment over 63 bytes, or a name over 255)")

// split is a name's first label and the rest, relative to the zone, both
// in presentation format.
func (c Config) split(name string) (first, rest string, ok bool) {
	l := c.layout()
	labs, ok := l.below(nil, name)
	if !ok || len(labs) == 0 {
		return "", "", false
	}
	var b []byte
	for i := len(labs) - 2; i >= 0; i-- {
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = appendLabel(b, labs[i])
	}
	return string(appendLabel(nil, labs[len(labs)-1])), string(b), true
}

// ServiceNames are the names DNS answers every instance of service (a name
// relative to the zone, e.g. web or api.prod) under: the service's own
// name (A/AAAA of the instances, and SRV), and its RFC 2782 SRV name
// (_web._tcp.cairn.internal.; _udp answers the same). ok is false for a
// service that makes no name in the zone.
func (c Config) ServiceNames(service string) (name, srv string, ok bool) {
	zone := c.Zone()
	if service == "" {
		return zone, "", true
	}
	if _, ok := c.Key(service); !ok {
		return "", "", false
	}
	service = strings.ToLower(strings.TrimSuffix(service, "."))
	name = service + "." + zone
	if zone == "." {
		name = service + "."
	}
	first, rest, _ := c.split(name)
	srv = "_" + first + "._tcp."
	if rest != "" {
		srv += rest + "."
	}
	if zone != "." {
		srv += zone
	}
	return name, srv, true
}

// ServiceDir is the key directory holding the registrations of service (a
// name relative to the zone, e.g. web or api.prod; "" for every service):
// what to read recursively for ServiceCatalog.
func (c Config) ServiceDir(service string) (string, error) {
	if service == "" {
		return c.Dir(), nil
	}
	key, ok := c.Key(strings.TrimSuffix(service, "."))
	if !ok {
		return "", fmt.Errorf("service %q: want a name relative to %s, such as web or api.prod", service, c.Zone())
	}
	return key, nil
}

// ServiceCatalog is the Catalog of n, a recursive read of
// ServiceDir(service): with a service, only its own instances (not those of
// services below it) and the entries DNS ignores.
func (c Config) ServiceCatalog(n *store.NodeExtern, service string) []Entry {
	entries := c.Catalog(n)
	if service == "" {
		return entries
	}
	want := strings.ToLower(strings.TrimSuffix(service, "."))
	kept := entries[:0]
	for _, e := range entries {
		if e.Service == want || e.Err != nil {
			kept = append(kept, e)
		}
	}
	return kept
}

// ServiceSummary is one service of a catalog and the names DNS answers all
// its instances under (ServiceNames).
type ServiceSummary struct {
	Service   string `json:"service"`
	Instances int    `json:"instances"`
	Name      string `json:"name"`    // A/AAAA and SRV of every instance
	SRVName   string `json:"srvName"` // RFC 2782 SRV
}

// Services are the services of entries that DNS answers, by name.
func (c Config) Services(entries []Entry) []ServiceSummary {
	count := map[string]int{}
	for _, e := range entries {
		if e.Err == nil {
			count[e.Service]++
		}
	}
	out := make([]ServiceSummary, 0, len(count))
	for s, n := range count {
		name, srv, _ := c.ServiceNames(s)
		out = append(out, ServiceSummary{Service: s, Instances: n, Name: name, SRVName: srv})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}
