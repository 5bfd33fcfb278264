package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// fakeSource is a Source over a fixed list of instances, with the Index's
// semantics: a name selects the instance with that name and every instance
// below it, "*" matching any one label.
type fakeSource struct {
	insts   []discovery.Instance
	panicOn string // Lookup of this name panics

	once   sync.Once
	byName map[string][]discovery.Instance // every name without "*", as the Index's trie
}

func (f *fakeSource) Lookup(name string) []discovery.Instance {
	if f.panicOn != "" && name == f.panicOn {
		panic("fake source: boom")
	}
	if !strings.Contains(name, "*") {
		f.once.Do(func() {
			f.byName = map[string][]discovery.Instance{}
			for _, in := range f.insts {
				for n := in.Name; n != ""; {
					f.byName[n] = append(f.byName[n], in)
					_, n, _ = strings.Cut(n, ".")
				}
			}
		})
		return slices.Clone(f.byName[name]) // the Index copies too
	}
	q := dns.SplitDomainName(name)
	var out []discovery.Instance
	for _, in := range f.insts {
		l := dns.SplitDomainName(in.Name)
		if len(l) < len(q) {
			continue
		}
		l = l[len(l)-len(q):]
		match := true
		for i := range q {
			match = match && (q[i] == "*" || q[i] == l[i])
		}
		if match {
			out = append(out, in)
		}
	}
	return out
}

func (f *fakeSource) Exists(name string) bool { return len(f.Lookup(name)) > 0 }

func (f *fakeSource) ByIP(ip netip.Addr) []discovery.Instance {
	var out []discovery.Instance
	for _, in := range f.insts {
		if a, err := netip.ParseAddr(in.Record.Host); err == nil && a.Unmap() == ip {
			out = append(out, in)
		}
	}
	return out
}

// t0 is the tests' "now".
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// inst builds an instance named name (relative to cairn.internal.).
func inst(name string, rec discovery.Record, expires time.Duration) discovery.Instance {
	fq := name + ".cairn.internal."
	labels := dns.SplitDomainName(fq)
	slices.Reverse(labels)
	in := discovery.Instance{Key: "/skydns/" + strings.Join(labels, "/"), Name: fq, Record: rec}
	if expires != 0 {
		in.Expires = t0.Add(expires)
	}
	return in
}

// bigService is n instances of service "big" at 10.1.x.y:8000+i.
func bigService(n int) []discovery.Instance {
	out := make([]discovery.Instance, n)
	for i := range out {
		out[i] = inst(fmt.Sprintf("big-%d.big", i), discovery.Record{
			Host: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), Port: 8000 + i,
		}, 0)
	}
	return out
}

// noShuffle keeps the Source's order, so expectations are stable.
func noShuffle(int, func(i, j int)) {}

func newResponder(t testing.TB, cfg Config, insts ...discovery.Instance) *Responder {
	t.Helper()
	if cfg.Shuffle == nil {
		cfg.Shuffle = noShuffle
	}
	r, err := NewResponder(cfg, &fakeSource{insts: insts})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// query is a plain recursive-desired question, as dig sends.
func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func withEDNS(m *dns.Msg, size uint16) *dns.Msg {
	m.SetEdns0(size, false)
	return m
}

// rrs renders records one per string, tabs folded, OPT left out.
func rrs(rs []dns.RR) []string {
	var out []string
	for _, rr := range rs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

// sorted is rrs, sorted, for order-free comparison.
func sorted(rs []dns.RR) []string {
	out := rrs(rs)
	slices.Sort(out)
	return out
}
