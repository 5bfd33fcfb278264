package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// Certificate expiry warnings. A certificate is warned about once it is
// past the point where it should have been renewed: managed certificates
// renew when a third of their lifetime is left (certmagic's
// DefaultRenewalWindowRatio), so a 7-day one is warned about with 2⅓ days
// left, not all its life. Certificates that live longer than
// longLivedCert are warned about 30 days ahead, as operators of a manual
// PKI expect.
const (
	longLivedCert      = 90 * 24 * time.Hour
	longLivedCertWarn  = 30 * 24 * time.Hour
	renewalWindowRatio = 1.0 / 3
)

// certWarnWithin is how close to its expiry ci is warned about; override,
// when positive (--cert-warning), is used for every certificate.
func certWarnWithin(ci *certInfo, override time.Duration) time.Duration {
	if override > 0 {
		return override
	}
	life := ci.NotAfter.Sub(ci.NotBefore)
	if life > longLivedCert {
		return longLivedCertWarn
	}
	return time.Duration(float64(life) * renewalWindowRatio)
}

// newStatusCmd is `cairn status`: every member's health, raft position and
// certificate, in one table.
func newStatusCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	var output string
	var warn time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the members, the leader, raft index and term, health and certificate expiry",
		Long: `Show the cluster as each member sees it: for every member of /v2/members,
its name, ID, client URL and whether it leads; its health (GET /health);
its raft term and commit index (X-Raft-Term, X-Raft-Index) and store index
(X-Etcd-Index); and when the certificate it serves (from the TLS handshake)
expires. Then the leader, and when the client certificate in use expires.

Certificates past their renewal point are warned about on stderr: with a
third of their lifetime left (when managed certificates renew), or 30 days
before expiry for certificates that live longer than 90 days; --cert-warning
sets one threshold for all. While the cluster elects a leader (a node that
just started) status waits up to --timeout for one. The exit status is 1
when a member is unreachable or unhealthy, when there is no leader, or when
the members cannot be listed.

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001. Each member is then asked at its first client URL.`,
		Example: `  cairn status --data-dir /tmp/cairn-dev
  cairn status --endpoints https://10.0.0.1:4001,https://10.0.0.2:4001 -o json`,
		Args: cobra.NoArgs,
	}
	cf := addClientFlags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&warn, "cert-warning", 0, "warn about certificates that expire within this time (default: past their renewal point, a third of their lifetime, or 30 days for certificates that live over 90 days)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return fmt.Errorf("unsupported output format %q: use table or json", output)
		}
		s, err := cf.resolve(environ)
		if err != nil {
			return err
		}
		cfg, err := s.config()
		if err != nil {
			return err
		}
		c, err := v2client.New(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		r, err := waitStatus(ctx, c, s.Files, warn)
		if err != nil {
			return withHints(err)
		}
		if output == "json" {
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			printStatus(stdout, r)
		}
		for _, w := range r.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if !r.Healthy {
			return fmt.Errorf("the cluster is not healthy: %s", strings.Join(r.Problems, "; "))
		}
		return nil
	}
	return cmd
}

// statusReport is what `cairn status` shows; its JSON is --output json.
type statusReport struct {
	// Leader is the leader's hex ID as /v2/members/leader answers it; ""
	// when there is none.
	Leader            string         `json:"leader"`
	LeaderName        string         `json:"leaderName,omitempty"`
	Members           []memberStatus `json:"members"`
	ClientCertificate certInfo       `json:"clientCertificate"`
	// Healthy: a leader, and every member reachable and healthy.
	Healthy bool `json:"healthy"`
	// Problems say why the cluster is not healthy.
	Problems []string `json:"problems"`
	// Warnings are certificates close to expiry.
	Warnings []string `json:"warnings"`
}

// memberStatus is one member as it answers at its first client URL.
type memberStatus struct {
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
	RaftTerm    uint64    `json:"raftTerm"`
	RaftIndex   uint64    `json:"raftIndex"`
	EtcdIndex   uint64    `json:"etcdIndex"`
	Certificate *certInfo `json:"certificate,omitempty"`
	// Error says what failed: the connection, the health check or a query.
	Error string `json:"error,omitempty"`
}

// certInfo is a certificate's identity and expiry.
type certInfo struct {
	File      string    `json:"file,omitempty"`
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// DaysLeft is whole days until NotAfter, rounded down: negative once
	// expired.
	DaysLeft int  `json:"daysLeft"`
	Expired  bool `json:"expired"`
}

func newCertInfo(cert *x509.Certificate, now time.Time) *certInfo {
	subject := "CN=" + cert.Subject.CommonName
	if len(cert.URIs) > 0 {
		subject = cert.URIs[0].String()
	}
	days := int(math.Floor(cert.NotAfter.Sub(now).Hours() / 24))
	return &certInfo{Subject: subject, NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), DaysLeft: days, Expired: !now.Before(cert.NotAfter)}
}

// expiry is "2027-11-27 (365 days)" or "2026-01-02 (EXPIRED)".
func (ci *certInfo) expiry() string {
	d := ci.NotAfter.Format("2006-01-02")
	switch {
	case ci.Expired:
		return d + " (EXPIRED)"
	case ci.DaysLeft == 1:
		return d + " (1 day)"
	}
	return fmt.Sprintf("%s (%d days)", d, ci.DaysLeft)
}

// leaderPoll is how often status asks again for a leader while the
// cluster elects one.
const leaderPoll = 100 * time.Millisecond

// waitStatus is gatherStatus, asked again while the cluster has no leader,
// for up to the client's timeout: a node that just started is healthy as
// soon as it has elected itself, and says so.
func waitStatus(ctx context.Context, c *v2client.Client, files tlsconf.Files, warn time.Duration) (*statusReport, error) {
	deadline := time.Now().Add(c.Timeout())
	for {
		r, err := gatherStatus(ctx, c, files, time.Now(), warn)
		if err != nil || r.Leader != "" || !time.Now().Add(leaderPoll).Before(deadline) {
			return r, err
		}
		t := time.NewTimer(leaderPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, nil
		case <-t.C:
		}
	}
}

// gatherStatus lists the members through c and asks each one, in
// parallel, at its first client URL.
func gatherStatus(ctx context.Context, c *v2client.Client, files tlsconf.Files, now time.Time, warn time.Duration) (*statusReport, error) {
	members, err := c.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the members: %w", err)
	}
	r := &statusReport{Members: make([]memberStatus, len(members)), Problems: []string{}, Warnings: []string{}}

	leader, err := c.Leader(ctx)
	if err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("no leader: %v", err))
	} else {
		r.Leader, r.LeaderName = leader.ID, leader.Name
	}

	var wg sync.WaitGroup
	for i, m := range members {
		r.Members[i] = memberStatus{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs,
			IsLeader: r.Leader != "" && m.ID == r.Leader}
		wg.Add(1)
		go func() {
			defer wg.Done()
			probeMember(ctx, c, &r.Members[i], now)
		}()
	}
	wg.Wait()

	r.Healthy = r.Leader != ""
	for _, m := range r.Members {
		name := m.Name
		if name == "" {
			name = m.ID
		}
		switch {
		case !m.Reachable:
			r.Healthy = false
			r.Problems = append(r.Problems, fmt.Sprintf("member %s is unreachable: %s", name, m.Error))
		case !m.Healthy:
			r.Healthy = false
			r.Problems = append(r.Problems, fmt.Sprintf("member %s is unhealthy: %s", name, m.Error))
		case m.Error != "":
			r.Problems = append(r.Problems, fmt.Sprintf("member %s: %s", name, m.Error))
		}
		if ci := m.Certificate; ci != nil && ci.NotAfter.Sub(now) < certWarnWithin(ci, warn) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the certificate of member %s (%s, %s) expires %s", name, m.Endpoint, ci.Subject, ci.expiry()))
		}
	}

	if mat, err := tlsconf.LoadMaterial(files); err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("read the client certificate: %v", err))
	} else {
		ci := newCertInfo(mat.Certificate().Leaf, now)
		ci.File = files.CertFile
		r.ClientCertificate = *ci
		if ci.NotAfter.Sub(now) < certWarnWithin(ci, warn) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the client certificate %s (%s) expires %s", ci.File, ci.Subject, ci.expiry()))
		}
	}
	return r, nil
}

// probeMember fills m from its first client URL: the certificate it
// serves, /v2/stats/self, the raft headers of a local read of the key root
// and /health.
func probeMember(ctx context.Context, c *v2client.Client, m *memberStatus, now time.Time) {
	if len(m.ClientURLs) == 0 {
		m.Error = "no client URL: the member has not started"
		return
	}
	eps, err := parseEndpoints(m.ClientURLs[0])
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
	m.Certificate = newCertInfo(cert, now)

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
	resp, err := one.Do(ctx, v2client.Request{Method: http.MethodHead, Path: "/v2/keys/?stale=true"})
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

// printStatus writes the report as a table, then the leader and the client
// certificate, then the problems.
func printStatus(w io.Writer, r *statusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tCLIENT URL\tLEADER\tHEALTH\tRAFT TERM\tRAFT INDEX\tETCD INDEX\tCERTIFICATE EXPIRES")
	for _, m := range r.Members {
		name, leader, health := m.Name, "", "healthy"
		if name == "" {
			name = "(unstarted)"
		}
		if m.IsLeader {
			leader = "*"
		}
		switch {
		case !m.Reachable:
			health = "unreachable"
		case !m.Healthy:
			health = "unhealthy"
		}
		term, index, etcdIndex, expires := "-", "-", "-", "-"
		if m.Reachable {
			term, index, etcdIndex = strconv.FormatUint(m.RaftTerm, 10), strconv.FormatUint(m.RaftIndex, 10), strconv.FormatUint(m.EtcdIndex, 10)
		}
		if m.Certificate != nil {
			expires = m.Certificate.expiry()
		}
		ep := m.Endpoint
		if ep == "" {
			ep = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, m.ID, ep, leader, health, term, index, etcdIndex, expires)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if r.Leader != "" {
		fmt.Fprintf(w, "leader:             %s (%s)\n", r.LeaderName, r.Leader)
	} else {
		fmt.Fprintln(w, "leader:             none")
	}
	if ci := r.ClientCertificate; ci.File != "" {
		fmt.Fprintf(w, "client certificate: %s (%s) expires %s\n", ci.File, ci.Subject, ci.expiry())
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "problem:           ", p)
	}
}
