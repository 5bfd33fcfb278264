package v2client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Status is the cluster as each member sees it (what `cairn status`
// shows; its JSON is `cairn status -o json`).
type Status struct {
	// Leader is the leader's hex ID as /v2/members/leader answers it; ""
	// when there is none.
	Leader     string         `json:"leader"`
	LeaderName string         `json:"leaderName,omitempty"`
	Members    []MemberStatus `json:"members"`
	// ClientCertificate is the certificate the client presents.
	ClientCertificate CertInfo `json:"clientCertificate"`
	// Healthy: a leader, and every member reachable and healthy.
	Healthy bool `json:"healthy"`
	// Problems say why the cluster is not healthy.
	Problems []string `json:"problems"`
	// Warnings are certificates close to expiry (StatusOptions.WarnWithin).
	Warnings []string `json:"warnings"`
}

// MemberStatus is one member as it answers at its first client URL.
type MemberStatus struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLeader   bool     `json:"isLeader"`
	// Endpoint is the client URL asked; "" for a member that has not
	// started (no client URL yet).
	Endpoint  string `json:"endpoint"`
	Reachable bool   `json:"reachable"`
	Healthy   bool   `json:"healthy"`
	// State is the raft state the member reports (/v2/stats/self).
	State string `json:"state,omitempty"`
	// RaftTerm and RaftIndex are X-Raft-Term and X-Raft-Index (its commit
	// index), EtcdIndex X-Etcd-Index (its store index).
	RaftTerm  uint64 `json:"raftTerm"`
	RaftIndex uint64 `json:"raftIndex"`
	EtcdIndex uint64 `json:"etcdIndex"`
	// Certificate is the one the member serves (from the TLS handshake).
	Certificate *CertInfo `json:"certificate,omitempty"`
	// Error says what failed: the connection, the health check or a query.
	Error string `json:"error,omitempty"`
}

// CertInfo is a certificate's identity and expiry.
type CertInfo struct {
	File      string    `json:"file,omitempty"`
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// DaysLeft is whole days until NotAfter, rounded down: negative once
	// expired.
	DaysLeft int  `json:"daysLeft"`
	Expired  bool `json:"expired"`
}

// NewCertInfo describes cert as of now. Its subject is its first URI SAN
// (the identity Cairn reads), else its CN.
func NewCertInfo(cert *x509.Certificate, now time.Time) *CertInfo {
	subject := "CN=" + cert.Subject.CommonName
	if len(cert.URIs) > 0 {
		subject = cert.URIs[0].String()
	}
	days := int(math.Floor(cert.NotAfter.Sub(now).Hours() / 24))
	return &CertInfo{Subject: subject, NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), DaysLeft: days, Expired: !now.Before(cert.NotAfter)}
}

// Expiry is "2027-11-27 (365 days)", "2027-11-27 (1 day)" or
// "2026-01-02 (EXPIRED)".
func (ci *CertInfo) Expiry() string {
	d := ci.NotAfter.Format("2006-01-02")
	switch {
	case ci.Expired:
		return d + " (EXPIRED)"
	case ci.DaysLeft == 1:
		return d + " (1 day)"
	}
	return fmt.Sprintf("%s (%d days)", d, ci.DaysLeft)
}

// StatusOptions configure Client.Status.
type StatusOptions struct {
	// WarnWithin is how close to its expiry a certificate valid from
	// notBefore to notAfter is warned about (nil: none is).
	WarnWithin func(notBefore, notAfter time.Time) time.Duration
	// LeaderPoll is how often the members are asked again while there is
	// no leader (default 100 ms).
	LeaderPoll time.Duration
}

// Status lists the members and asks each one, in parallel, at its first
// client URL: the certificate it serves, /v2/stats/self, the raft headers
// of a local read of the key root, and /health. While the cluster has no
// leader (a node that just started elects one) it asks again, for up to the
// client's Timeout, so that a fresh node is reported healthy as soon as it
// leads. Its error is for members that cannot be listed; a member that
// fails is a problem in the Status.
func (c *Client) Status(ctx context.Context, o StatusOptions) (*Status, error) {
	if o.LeaderPoll <= 0 {
		o.LeaderPoll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(c.Timeout())
	for {
		s, err := c.status(ctx, o, time.Now())
		if err != nil || s.Leader != "" || !time.Now().Add(o.LeaderPoll).Before(deadline) {
			return s, err
		}
		t := time.NewTimer(o.LeaderPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return s, nil
		case <-t.C:
		}
	}
}

// status is one round of Status, with certificates judged at now.
func (c *Client) status(ctx context.Context, o StatusOptions, now time.Time) (*Status, error) {
	members, err := c.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the members: %w", err)
	}
	s := &Status{Members: make([]MemberStatus, len(members)), Problems: []string{}, Warnings: []string{}}
	warn := func(ci *CertInfo, format string, args ...any) {
		if o.WarnWithin != nil && ci.NotAfter.Sub(now) < o.WarnWithin(ci.NotBefore, ci.NotAfter) {
			s.Warnings = append(s.Warnings, fmt.Sprintf(format, args...))
		}
	}

	leader, err := c.Leader(ctx)
	if err != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("no leader: %v", err))
	} else {
		s.Leader, s.LeaderName = leader.ID, leader.Name
	}

	var wg sync.WaitGroup
	for i, m := range members {
		s.Members[i] = MemberStatus{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs,
			IsLeader: s.Leader != "" && m.ID == s.Leader}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.probe(ctx, &s.Members[i], now)
		}()
	}
	wg.Wait()

	s.Healthy = s.Leader != ""
	for _, m := range s.Members {
		name := m.Name
		if name == "" {
			name = m.ID
		}
		switch {
		case !m.Reachable:
			s.Healthy = false
			s.Problems = append(s.Problems, fmt.Sprintf("member %s is unreachable: %s", name, m.Error))
		case !m.Healthy:
			s.Healthy = false
			s.Problems = append(s.Problems, fmt.Sprintf("member %s is unhealthy: %s", name, m.Error))
		case m.Error != "":
			s.Problems = append(s.Problems, fmt.Sprintf("member %s: %s", name, m.Error))
		}
		if ci := m.Certificate; ci != nil {
			warn(ci, "the certificate of member %s (%s, %s) expires %s", name, m.Endpoint, ci.Subject, ci.Expiry())
		}
	}

	if cert, err := c.clientCertificate(); err != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("read the client certificate: %v", err))
	} else {
		ci := NewCertInfo(cert, now)
		ci.File = c.cfg.CertFile
		s.ClientCertificate = *ci
		warn(ci, "the client certificate %s (%s) expires %s", ci.File, ci.Subject, ci.Expiry())
	}
	return s, nil
}

// probe fills m from its first client URL.
func (c *Client) probe(ctx context.Context, m *MemberStatus, now time.Time) {
	if len(m.ClientURLs) == 0 {
		m.Error = "no client URL: the member has not started"
		return
	}
	eps, err := CheckEndpoints(m.ClientURLs[:1])
	if err != nil {
		m.Error = fmt.Sprintf("client URL: %v", err)
		return
	}
	m.Endpoint = eps[0]
	cert, err := c.PeerCertificate(ctx, m.Endpoint)
	if err != nil {
		m.Error = err.Error()
		return
	}
	m.Reachable = true
	m.Certificate = NewCertInfo(cert, now)

	one, err := c.WithEndpoints(m.Endpoint)
	if err != nil {
		m.Error = err.Error()
		return
	}
	var errs []string
	self, err := one.SelfStats(ctx)
	if err != nil {
		errs = append(errs, "stats: "+err.Error())
	}
	m.State = self.State
	// A local read: the member's own raft position, even without a leader.
	resp, err := one.Do(ctx, Request{Method: http.MethodHead, Path: "/v2/keys/?stale=true"})
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		errs = append(errs, "raft index: "+err.Error())
	} else {
		m.RaftTerm, _ = strconv.ParseUint(resp.Header.Get("X-Raft-Term"), 10, 64)
		m.RaftIndex, _ = strconv.ParseUint(resp.Header.Get("X-Raft-Index"), 10, 64)
		m.EtcdIndex, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	}
	if err := one.Health(ctx); err != nil {
		// Unhealthy first: it is why the member counts as a problem.
		errs = append([]string{"health: " + err.Error()}, errs...)
	} else {
		m.Healthy = true
	}
	m.Error = strings.Join(errs, "; ")
}

// clientCertificate is the leaf of the certificate the client presents
// now (a reloading configuration gives its current one).
func (c *Client) clientCertificate() (*x509.Certificate, error) {
	var cert *tls.Certificate
	switch tc := c.cfg.TLS; {
	case tc.GetClientCertificate != nil:
		var err error
		if cert, err = tc.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil {
			return nil, err
		}
	case len(tc.Certificates) > 0:
		cert = &tc.Certificates[0]
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("the client has no certificate")
	}
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	return x509.ParseCertificate(cert.Certificate[0])
}
