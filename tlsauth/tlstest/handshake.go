package tlstest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"
)

// Result is what both sides of a Handshake saw.
type Result struct {
	ClientErr, ServerErr error
	Client, Server       tls.ConnectionState
}

// hangBound bounds a handshake that hangs (a bug); it is not a wait.
const hangBound = 30 * time.Second

// Handshake connects cli to srv over a loopback TCP connection, then has
// the server write two bytes that the client reads: with TLS 1.3 a client
// only learns that the server refused its certificate when it reads. A
// client configuration without ServerName dials "localhost". Both sides
// are closed when it returns.
func Handshake(t testing.TB, srv, cli *tls.Config) Result {
	t.Helper()
	if cli.ServerName == "" {
		cli = cli.Clone()
		cli.ServerName = "localhost"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(hangBound)

	type serverResult struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan serverResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- serverResult{err: err}
			return
		}
		c.SetDeadline(deadline)
		tc := tls.Server(c, srv)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		st := tc.ConnectionState()
		tc.Close()
		done <- serverResult{err: err, state: st}
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(deadline)
	tc := tls.Client(raw, cli)
	var r Result
	r.ClientErr = tc.Handshake()
	if r.ClientErr == nil {
		_, r.ClientErr = io.ReadFull(tc, make([]byte, 2))
	}
	r.Client = tc.ConnectionState()
	tc.Close()
	s := <-done
	r.ServerErr, r.Server = s.err, s.state
	return r
}

// ClientConfig returns a client configuration trusting pool and presenting
// certs (none if empty), for "localhost".
func ClientConfig(pool *x509.CertPool, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "localhost"}
}
