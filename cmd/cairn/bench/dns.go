package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsLoad queries Cfg.DNSAddr over UDP, each client on its own socket.
type dnsLoad struct {
	cfg   Config
	tg    Target
	qtype uint16
	qname string
}

func newDNSLoad(tg Target, cfg Config) (*dnsLoad, error) {
	q := dns.TypeA
	if cfg.DNSType == "SRV" {
		q = dns.TypeSRV
	}
	name := dns.Fqdn(cfg.DNSName)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("bench: --dns-name %q is not a domain name", cfg.DNSName)
	}
	return &dnsLoad{cfg: cfg, tg: tg, qtype: q, qname: name}, nil
}

func (l *dnsLoad) close() {}

// setup registers one instance of the queried name (SkyDNS layout, the
// key /skydns/<labels reversed>/bench-1) through the target when it has
// endpoints, and waits until the responder answers it.
func (l *dnsLoad) setup(ctx context.Context, p *Progress) error {
	if len(l.tg.Endpoints) == 0 {
		return nil
	}
	c, err := l.tg.dial(1)
	if err != nil {
		return err
	}
	defer c.close()
	labels := dns.SplitDomainName(l.qname)
	slices.Reverse(labels)
	key := "/v2/keys/skydns/" + strings.Join(labels, "/") + "/bench-1"
	rec, _ := json.Marshal(map[string]any{"host": "127.0.0.1", "port": 8080})
	p.printf("setup: registering %s (%s)\n", l.qname, key)
	if _, err := c.do(ctx, c.hc, http.MethodPut, c.endpoint()+key, []byte("value="+string(rec)), nil, http.StatusOK, http.StatusCreated); err != nil {
		return err
	}
	cl := &dns.Client{Net: "udp", Timeout: time.Second}
	m := new(dns.Msg).SetQuestion(l.qname, l.qtype)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _, err := cl.ExchangeContext(ctx, m, l.cfg.DNSAddr)
		if err == nil {
			if err = answered(r); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s %s at %s after registering it: %w", dns.TypeToString[l.qtype], l.qname, l.cfg.DNSAddr, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// answered is nil for a NOERROR answer with records.
func answered(r *dns.Msg) error {
	switch {
	case r.Rcode != dns.RcodeSuccess:
		return fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	case len(r.Answer) == 0:
		return errors.New("no answer")
	}
	return nil
}

func (l *dnsLoad) run(ctx context.Context, c *counters) (*tally, time.Duration, error) {
	return closedLoop(ctx, l.cfg, func(int) (op, func(), error) {
		cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		conn, err := cl.Dial(l.cfg.DNSAddr)
		if err != nil {
			return nil, nil, fmt.Errorf("bench: dns %s: %w", l.cfg.DNSAddr, err)
		}
		m := new(dns.Msg).SetQuestion(l.qname, l.qtype)
		return func(ctx context.Context, _ uint64) error {
			m.Id = dns.Id()
			r, _, err := cl.ExchangeWithConnContext(ctx, m, conn)
			if err != nil {
				return err
			}
			return answered(r)
		}, func() { conn.Close() }, nil
	}, c)
}
