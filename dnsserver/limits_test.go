package dnsserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// largeRecords is three single instances with texts at and over
// discovery.MaxTextBytes, and n instances of service "tx" with a text of
// size bytes each.
func largeRecords(n, size int) []discovery.Instance {
	insts := []discovery.Instance{
		// Stored before discovery bounded text, or by a Source that does
		// not validate: once an RR too large to pack and an empty answer.
		inst("huge.one", rec{Host: "10.9.0.1", Port: 80, Text: strings.Repeat("h", 900_000)}, 0),
		inst("max.one", rec{Text: strings.Repeat("m", discovery.MaxTextBytes)}, 0),
		inst("esc.one", rec{Text: strings.Repeat(`\`, discovery.MaxTextBytes+10)}, 0),
	}
	for i := range n {
		insts = append(insts, inst(fmt.Sprintf("t%d.tx", i), rec{Host: fmt.Sprintf("10.8.%d.%d", i/250, i%250+1), Port: 80,
			Text: strings.Repeat(string(rune('a'+i%26)), size)}, 0))
	}
	return insts
}

// txtBytes is the text of a TXT record as sent: the sum of its
// character-strings on the wire (each a length byte of at most 255 and
// the bytes), unescaped.
func txtBytes(t *testing.T, rr dns.RR) (n int) {
	t.Helper()
	txt, isTXT := rr.(*dns.TXT)
	if !isTXT {
		t.Fatalf("%v is not a TXT record", rr.Header())
	}
	buf := make([]byte, dns.Len(txt)+64)
	off, err := dns.PackRR(txt, buf, 0, nil, false)
	if err != nil {
		t.Fatalf("pack TXT: %v", err)
	}
	rdata := buf[off-int(txt.Hdr.Rdlength) : off]
	for len(rdata) > 0 {
		l := int(rdata[0])
		n += l
		rdata = rdata[1+l:]
	}
	return n
}

// TestAnswerWithinTCPLimits: every TCP answer is a valid message of at
// most 65,535 bytes that says what it could: an oversized text is cut to
// discovery.MaxTextBytes, and answers over 64 KB keep the records that fit
// and set TC, never an empty answer.
func TestAnswerWithinTCPLimits(t *testing.T) {
	r := newResponder(t, Config{}, largeRecords(40, discovery.MaxTextBytes)...)
	tests := []struct {
		name      string
		q         string
		qtype     uint16
		proto     string
		answers   int // exact count; -1: some, fewer than all
		tc        bool
		textBytes int // of each TXT answer
	}{
		{"900 KB text is cut", "huge.one.cairn.internal.", dns.TypeTXT, TCP, 1, false, discovery.MaxTextBytes},
		{"900 KB text with ANY", "huge.one.cairn.internal.", dns.TypeANY, TCP, 2, false, discovery.MaxTextBytes},
		{"other types unaffected", "huge.one.cairn.internal.", dns.TypeSRV, TCP, 1, false, 0},
		{"longest valid text whole", "max.one.cairn.internal.", dns.TypeTXT, TCP, 1, false, discovery.MaxTextBytes},
		{"escapes count as one byte", "esc.one.cairn.internal.", dns.TypeTXT, TCP, 1, false, discovery.MaxTextBytes},
		{"40 x 4 KB is over 64 KB: truncated", "tx.cairn.internal.", dns.TypeTXT, TCP, -1, true, discovery.MaxTextBytes},
		{"40 x 4 KB with ANY", "tx.cairn.internal.", dns.TypeANY, TCP, -1, true, discovery.MaxTextBytes},
		{"over UDP: TC", "huge.one.cairn.internal.", dns.TypeTXT, UDP, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := r.Answer(query(tt.q, tt.qtype), t0, tt.proto)
			b, err := m.Pack()
			if err != nil {
				t.Fatalf("answer does not pack: %v", err)
			}
			if len(b) > dns.MaxMsgSize {
				t.Fatalf("answer is %d bytes, over %d", len(b), dns.MaxMsgSize)
			}
			var back dns.Msg
			if err := back.Unpack(b); err != nil {
				t.Fatalf("answer does not unpack: %v", err)
			}
			switch {
			case tt.answers >= 0 && len(back.Answer) != tt.answers,
				tt.answers < 0 && (len(back.Answer) == 0 || len(back.Answer) >= 40):
				t.Fatalf("%d answers, want %d (-1: some, not all)", len(back.Answer), tt.answers)
			}
			if back.Truncated != tt.tc || back.Rcode != dns.RcodeSuccess {
				t.Fatalf("TC %v rcode %d, want TC %v and success", back.Truncated, back.Rcode, tt.tc)
			}
			for _, rr := range back.Answer {
				if rr.Header().Rrtype != dns.TypeTXT {
					continue
				}
				if n := txtBytes(t, rr); n != tt.textBytes {
					t.Errorf("TXT of %d bytes, want %d", n, tt.textBytes)
				}
			}
		})
	}
}

// TestServerLargeTXTOverTCP is the reported failure end to end: the TXT
// answer of a registration with a 900 KB text, and of a service whose TXT
// records add up to more than 64 KB, come back over TCP with records.
func TestServerLargeTXTOverTCP(t *testing.T) {
	s := startServer(t, &fakeSource{insts: largeRecords(40, discovery.MaxTextBytes)})
	resp := exchange(t, s.Addr(), "tcp", query("huge.one.cairn.internal.", dns.TypeTXT))
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("TCP TXT of a 900 KB text: rcode %d, %d answers", resp.Rcode, len(resp.Answer))
	}
	if n := txtBytes(t, resp.Answer[0]); n != discovery.MaxTextBytes {
		t.Fatalf("TCP TXT of a 900 KB text: %d bytes of text, want %d", n, discovery.MaxTextBytes)
	}
	resp = exchange(t, s.Addr(), "tcp", query("tx.cairn.internal.", dns.TypeTXT))
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) < 10 || !resp.Truncated {
		t.Fatalf("TCP TXT of 40 x 4 KB: rcode %d, %d answers, TC %v; want success, the records that fit, TC", resp.Rcode, len(resp.Answer), resp.Truncated)
	}
	resp = exchange(t, s.Addr(), "udp", query("huge.one.cairn.internal.", dns.TypeTXT))
	if !resp.Truncated {
		t.Fatalf("UDP TXT of a 900 KB text: no TC")
	}
}

// TestServerUnpackableAnswerIsServfail: an answer that cannot be packed (a
// Source that hands out a target with a 64-byte label) is a SERVFAIL, not
// silence or a closed connection.
func TestServerUnpackableAnswerIsServfail(t *testing.T) {
	bad := inst("bad.svc", rec{Host: strings.Repeat("x", 64) + ".example.com", Port: 80}, 0)
	s := startServer(t, &fakeSource{insts: []discovery.Instance{bad}})
	for _, proto := range []string{"udp", "tcp"} {
		resp := exchange(t, s.Addr(), proto, query("svc.cairn.internal.", dns.TypeSRV))
		if resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: rcode %d, want SERVFAIL", proto, resp.Rcode)
		}
	}
	if !strings.Contains(s.log.String(), "answer cannot be packed") {
		t.Errorf("no log line for the unpackable answer:\n%s", s.log)
	}
}
