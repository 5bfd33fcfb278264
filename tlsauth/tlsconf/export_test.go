package tlsconf

// Internals the external tests (package tlsconf_test) look at.
var TLS12Suites = tls12Suites

// Generation returns the material m serves now; it changes identity with
// every replacement.
func Generation(m *Material) any { return m.cur.Load() }

// NotIssued returns why m's certificate is not issued by a CA of its CA
// file (nil if it is).
func NotIssued(m *Material) error { return m.cur.Load().notIssued }
