package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Workloads are the names Config.Workload takes.
var Workloads = []string{"put", "get", "refresh", "watch", "dns"}

// Config is one workload's load. The zero value of a field means its
// default (see Defaults).
type Config struct {
	Workload string // one of Workloads
	// Clients is the number of concurrent clients, each with one request
	// in flight (closed loop); for watch, the number of watchers.
	Clients int
	// Duration bounds the run, unless Requests is set: then the run ends
	// after that many requests (writes, for watch).
	Duration  time.Duration
	Requests  int
	Keys      int    // keys written, read or refreshed, in turn
	ValueSize int    // bytes of each value written
	Prefix    string // directory of the keys, e.g. /bench
	Stale     bool   // get: a local read (stale=true) instead of quorum=true
	TTL       time.Duration
	// Interval, for refresh, paces the run (open loop): each of the Keys
	// registrations heartbeats once per Interval, spread evenly over time
	// and over the members, and Clients bounds the heartbeats in flight.
	// Zero: the closed loop.
	Interval time.Duration
	// DNSAddr is the host:port a dns run queries (UDP), for DNSName of
	// type DNSType (A or SRV).
	DNSAddr, DNSName, DNSType string
	// SkipSetup skips writing the keys (or the DNS registration) the
	// workload reads or refreshes: they exist from an earlier run.
	SkipSetup bool
}

// Defaults are the values Config's zero fields take.
var Defaults = Config{
	Clients:   16,
	Duration:  10 * time.Second,
	Keys:      1000,
	ValueSize: 100,
	Prefix:    "/bench",
	TTL:       time.Minute,
	DNSAddr:   "127.0.0.1:8053",
	DNSName:   "bench.cairn.internal.",
	DNSType:   "A",
}

// withDefaults fills the zero fields and checks the result.
func (c Config) withDefaults() (Config, error) {
	d := Defaults
	if c.Clients == 0 {
		c.Clients = d.Clients
		if c.Interval > 0 {
			c.Clients = defaultPacedClients
		}
	}
	if c.Duration == 0 && c.Requests == 0 {
		c.Duration = d.Duration
	}
	if c.Keys == 0 {
		c.Keys = d.Keys
	}
	if c.ValueSize == 0 {
		c.ValueSize = d.ValueSize
	}
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.DNSAddr == "" {
		c.DNSAddr = d.DNSAddr
	}
	if c.DNSName == "" {
		c.DNSName = d.DNSName
	}
	if c.DNSType == "" {
		c.DNSType = d.DNSType
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	c.DNSType = strings.ToUpper(c.DNSType)
	switch {
	case !slices.Contains(Workloads, c.Workload):
		return c, fmt.Errorf("bench: unknown workload %q: use one of %s", c.Workload, strings.Join(Workloads, ", "))
	case c.Clients < 0 || c.Requests < 0 || c.Duration < 0 || c.Keys < 0 || c.ValueSize < 0:
		return c, fmt.Errorf("bench: clients, requests, duration, keys and value size cannot be negative")
	case c.Clients > 10000:
		return c, fmt.Errorf("bench: %d clients is more than 10000", c.Clients)
	case c.TTL < time.Second:
		return c, fmt.Errorf("bench: --ttl %v: TTLs are whole seconds, at least 1s", c.TTL)
	case c.DNSType != "A" && c.DNSType != "SRV":
		return c, fmt.Errorf("bench: --dns-type %q: use A or SRV", c.DNSType)
	case c.Interval < 0:
		return c, fmt.Errorf("bench: --interval %v cannot be negative", c.Interval)
	case c.Interval > 0 && c.Workload != "refresh":
		return c, fmt.Errorf("bench: --interval paces refresh only, not %s", c.Workload)
	case c.Interval > 0 && c.Interval >= c.TTL:
		return c, fmt.Errorf("bench: --interval %v is not shorter than --ttl %v: every key would expire between its heartbeats", c.Interval, c.TTL)
	case c.Prefix == "/":
		return c, fmt.Errorf("bench: --prefix cannot be the root: the run writes under it")
	}
	return c, nil
}

// Label names the workload in tables: "get stale" for a local read.
func (c Config) Label() string {
	l := c.Workload
	if c.Workload == "get" && c.Stale {
		l += " stale"
	}
	if c.Workload == "dns" {
		l += " " + strings.ToUpper(c.DNSType)
	}
	if c.Interval > 0 {
		l += " paced"
	}
	return l
}

// ParseSpec returns base changed by spec, a workload name followed by
// comma-separated settings: "put,clients=64", "get,clients=64,stale",
// "refresh,clients=64,keys=10000,ttl=60s". The settings are clients,
// requests, duration, keys, value-size, prefix, stale, ttl, interval,
// dns-addr, dns-name and dns-type.
func ParseSpec(base Config, spec string) (Config, error) {
	parts := strings.Split(spec, ",")
	c := base
	c.Workload = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		k, v, hasValue := strings.Cut(strings.TrimSpace(p), "=")
		var err error
		switch k {
		case "clients":
			c.Clients, err = strconv.Atoi(v)
		case "requests":
			c.Requests, err = strconv.Atoi(v)
			c.Duration = 0
		case "duration":
			c.Duration, err = time.ParseDuration(v)
			c.Requests = 0
		case "keys":
			c.Keys, err = strconv.Atoi(v)
		case "value-size":
			c.ValueSize, err = strconv.Atoi(v)
		case "prefix":
			c.Prefix = v
		case "stale":
			c.Stale = true
			if hasValue {
				c.Stale, err = strconv.ParseBool(v)
			}
		case "ttl":
			c.TTL, err = time.ParseDuration(v)
		case "interval":
			c.Interval, err = time.ParseDuration(v)
		case "dns-addr":
			c.DNSAddr = v
		case "dns-name":
			c.DNSName = v
		case "dns-type":
			c.DNSType = v
		default:
			return c, fmt.Errorf("bench: %q: unknown setting %q (clients, requests, duration, keys, value-size, prefix, stale, ttl, interval, dns-addr, dns-name, dns-type)", spec, k)
		}
		if err != nil {
			return c, fmt.Errorf("bench: %q: %s: %w", spec, k, err)
		}
	}
	return c.withDefaults()
}
