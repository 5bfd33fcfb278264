package dnsserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func webAndDB() Source {
	return &fakeSource{insts: []discovery.Instance{
		inst("web-1.web", discovery.Record{Host: "10.0.0.1", Port: 80}, 0),
		inst("db-1.db", discovery.Record{Host: "10.0.0.2", Port: 5432}, 0),
	}}
}

// hideDB shows everything to a client with a certificate, and hides the
// db service from one without.
func hideDB(cs *tls.ConnectionState) func(string) bool {
	if cs != nil && len(cs.PeerCertificates) > 0 {
		return nil
	}
	return func(key string) bool { return !strings.Contains(key, "/db/") }
}

func TestDoH(t *testing.T) {
	s, err := New(Config{}, webAndDB(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetFilter(hideDB)
	h := s.DoHHandler()
	pack := func(name string, qtype uint16) []byte {
		b, err := query(name, qtype).Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	get := func(b []byte) *http.Request {
		return httptest.NewRequest(http.MethodGet, "/dns-query?dns="+base64.RawURLEncoding.EncodeToString(b), nil)
	}
	post := func(b []byte, ct string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/dns-query", bytes.NewReader(b))
		r.Header.Set("Content-Type", ct)
		return r
	}
	withCert := func(r *http.Request) *http.Request {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tlstest.NewCA(t).Cert}}
		return r
	}
	for _, tc := range []struct {
		name   string
		req    *http.Request
		code   int
		rcode  int
		answer int
	}{
		{"GET", get(pack("web.cairn.internal.", dns.TypeSRV)), 200, dns.RcodeSuccess, 1},
		{"POST", post(pack("web.cairn.internal.", dns.TypeSRV), "application/dns-message"), 200, dns.RcodeSuccess, 1},
		{"hidden service", post(pack("db.cairn.internal.", dns.TypeSRV), "application/dns-message"), 200, dns.RcodeNameError, 0},
		{"hidden address", get(pack("2.0.0.10.in-addr.arpa.", dns.TypePTR)), 200, dns.RcodeRefused, 0},
		{"with a certificate", withCert(get(pack("db.cairn.internal.", dns.TypeSRV))), 200, dns.RcodeSuccess, 1},
		{"padded base64", httptest.NewRequest(http.MethodGet, "/dns-query?dns="+base64.URLEncoding.EncodeToString(pack("web.cairn.internal.", dns.TypeA)), nil), 200, dns.RcodeSuccess, 1},
		{"no dns parameter", httptest.NewRequest(http.MethodGet, "/dns-query", nil), 400, 0, 0},
		{"not base64", httptest.NewRequest(http.MethodGet, "/dns-query?dns=!!", nil), 400, 0, 0},
		{"not a message", get([]byte{1, 2, 3}), 400, 0, 0},
		{"wrong type", post(pack("web.cairn.internal.", dns.TypeA), "text/plain"), 415, 0, 0},
		{"PUT", httptest.NewRequest(http.MethodPut, "/dns-query", nil), 405, 0, 0},
		{"too large", post(make([]byte, dns.MaxMsgSize+1), "application/dns-message"), 413, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tc.req)
			if w.Code != tc.code {
				t.Fatalf("status %d %q, want %d", w.Code, w.Body, tc.code)
			}
			if tc.code != 200 {
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/dns-message" {
				t.Errorf("Content-Type %q", ct)
			}
			m := new(dns.Msg)
			if err := m.Unpack(w.Body.Bytes()); err != nil {
				t.Fatal(err)
			}
			if m.Rcode != tc.rcode || len(m.Answer) != tc.answer {
				t.Errorf("answer %v, want rcode %s and %d records", m, dns.RcodeToString[tc.rcode], tc.answer)
			}
			if tc.answer > 0 && w.Header().Get("Cache-Control") != "max-age=30" {
				t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
		})
	}
}

func TestDoT(t *testing.T) {
	before := goleak.IgnoreCurrent()
	p := tlstest.NewPKI(t)
	s, err := New(Config{}, webAndDB(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetFilter(hideDB)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvConf := &tls.Config{
		Certificates: []tls.Certificate{*p.NodeMaterial.Certificate()},
		ClientCAs:    p.NodeMaterial.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
		NextProtos:   []string{"dot"},
	}
	if err := s.ServeTLS(tls.NewListener(ln, srvConf)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		goleak.VerifyNone(t, before)
	})
	pool := tlstest.Pool(p.CA.Cert)
	client := *p.ClientMaterial.Certificate()
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		answer int
	}{
		{"with a certificate: everything", []tls.Certificate{client}, 1},
		{"without: filtered", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tlstest.ClientConfig(pool, tc.certs...)
			cfg.ServerName = "127.0.0.1"
			c := &dns.Client{Net: "tcp-tls", TLSConfig: cfg, Timeout: 5 * time.Second}
			m, _, err := c.Exchange(query("db.cairn.internal.", dns.TypeSRV), s.TLSAddr())
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Answer) != tc.answer {
				t.Errorf("answer %v, want %d records", m, tc.answer)
			}
		})
	}
}
