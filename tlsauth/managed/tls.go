package managed

import (
	"crypto/tls"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// ServerConfig is m.ServerConfig(o) with the serving certificate chosen
// by get (Manager.GetCertificate) at each handshake. Client certificates
// are required and verified against the CA pool exactly as by
// Material.ServerConfig: only the certificate this server presents changes.
//
// When get has no certificate for the handshake (no name matches, nothing
// obtained yet, the store was unreachable), or the one it has is outside
// its validity period, the material's certificate is served instead, so
// the listener works from the first second and keeps working if renewals
// stop.
func ServerConfig(m *tlsconf.Material, o tlsconf.Options, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	cfg := m.ServerConfig(o)
	inner := cfg.GetConfigForClient
	pick := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c, err := get(hello); err == nil && usable(c, time.Now()) {
			return c, nil
		}
		return m.Certificate(), nil
	}
	var last atomic.Pointer[[2]*tls.Config] // the inner configuration and ours from it
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		in, err := inner(hello)
		if err != nil {
			return nil, err
		}
		if l := last.Load(); l != nil && l[0] == in {
			return l[1], nil
		}
		out := in.Clone()
		out.Certificates = nil
		out.GetCertificate = pick
		last.Store(&[2]*tls.Config{in, out})
		return out, nil
	}
	cfg.GetCertificate = pick
	return cfg
}

// usable reports whether c is a certificate valid at now.
func usable(c *tls.Certificate, now time.Time) bool {
	if c == nil || len(c.Certificate) == 0 || c.Leaf == nil {
		return false
	}
	return !now.Before(c.Leaf.NotBefore) && !now.After(c.Leaf.NotAfter)
}
