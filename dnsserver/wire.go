package dnsserver

import "encoding/binary"

// Header bits of a DNS message (RFC 1035 §4.1.1, RFC 4035 §3.2).
const (
	bitQR = 1 << 15
	bitTC = 1 << 9
	bitRD = 1 << 8
	bitCD = 1 << 4

	opcodeMask = 0xF << 11
	ednsDO     = 1 << 15 // in the OPT TTL's low 16 bits
)

// plainQuery is what the answer cache needs of a query, read from its wire
// form without unpacking it.
type plainQuery struct {
	id       uint16
	question []byte // qname, qtype, qclass as received (case kept)
	qtype    uint16
	bits     byte // keyRD | keyCD | keyOPT | keyDO
	udpSize  uint16
}

// Bits of plainQuery.bits: everything besides the question that the
// answer depends on.
const (
	keyRD = 1 << iota
	keyCD
	keyOPT
	keyDO
)

// parsePlain reads b as a plain query: QR, opcode and TC clear, one
// question, no answer or authority records, and at most an EDNS0 version-0
// OPT (without options other than cookies and padding, which the answer
// ignores) ending the message. Anything else (ok false) takes the slow
// path, where miekg/dns unpacks it and the Responder decides. A plain
// query's answer is a function of the fields parsePlain returns, the
// index and the time; that is what makes it cacheable.
func parsePlain(b []byte) (q plainQuery, ok bool) {
	if len(b) < dnsHeaderLen {
		return q, false
	}
	bits := binary.BigEndian.Uint16(b[2:])
	if bits&(bitQR|opcodeMask|bitTC) != 0 ||
		binary.BigEndian.Uint16(b[4:]) != 1 || // qdcount
		binary.BigEndian.Uint16(b[6:]) != 0 || binary.BigEndian.Uint16(b[8:]) != 0 {
		return q, false
	}
	arcount := binary.BigEndian.Uint16(b[10:])
	if arcount > 1 {
		return q, false
	}
	q.id = binary.BigEndian.Uint16(b)
	if bits&bitRD != 0 {
		q.bits |= keyRD
	}
	if bits&bitCD != 0 {
		q.bits |= keyCD
	}
	off := dnsHeaderLen
	for n := 0; ; {
		if off >= len(b) {
			return q, false
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		// No compression pointers (nothing precedes the question) and no
		// extended label types; names up to 255 bytes.
		if l > 63 || n+l+1 > 254 {
			return q, false
		}
		n += l + 1
		off += l + 1
	}
	if off+4 > len(b) {
		return q, false
	}
	q.qtype = binary.BigEndian.Uint16(b[off:])
	q.question = b[dnsHeaderLen : off+4]
	off += 4
	if arcount == 0 {
		return q, off == len(b)
	}
	// OPT: root name, type 41, class = UDP size, TTL = ext-rcode, version,
	// flags; then RDLENGTH and options.
	if off+11 > len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != 41 {
		return q, false
	}
	q.bits |= keyOPT
	q.udpSize = binary.BigEndian.Uint16(b[off+3:])
	if b[off+6] != 0 { // version
		return q, false
	}
	if binary.BigEndian.Uint16(b[off+7:])&ednsDO != 0 {
		q.bits |= keyDO
	}
	rdlen := int(binary.BigEndian.Uint16(b[off+9:]))
	off += 11
	if off+rdlen != len(b) {
		return q, false
	}
	for opts := b[off:]; len(opts) > 0; {
		if len(opts) < 4 {
			return q, false
		}
		code, l := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if l > len(opts)-4 {
			return q, false
		}
		switch {
		case code == 10 && (l == 8 || l >= 16 && l <= 40): // COOKIE, RFC 7873
		case code == 12: // PADDING, RFC 7830
		default:
			return q, false
		}
		opts = opts[4+l:]
	}
	return q, true
}
