//go:build linux

package clustertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// This file runs real cairn processes. It is Linux-only because it gives
// every node its own loopback IP (Linux routes all of 127/8 to lo), which is
// what lets one proxy per node tell the nodes apart and cut links.

// ProcTrustDomain is the trust domain of the PKI that StartProcs makes:
// tlstest's, which is tlsauth's default.
const ProcTrustDomain = tlstest.TrustDomain

// ProcOptions tune StartProcs. The zero value runs nodes that each list all
// the others in --peers, with a 100 ms heartbeat and a 1 s election timeout.
type ProcOptions struct {
	HeartbeatInterval time.Duration // --peer-heartbeat-interval; default cluster.DefaultHeartbeatInterval
	ElectionTimeout   time.Duration // --peer-election-timeout; default cluster.DefaultElectionTimeout
	SnapshotCount     uint64        // --snapshot-count when not 0
	Args              []string      // more flags for every node
	Env               []string      // more environment for every node (CAIRN_* of the test's own environment is dropped)
	// Sequential forms the cluster the incremental way: node 0 alone starts
	// a new cluster, then each next node joins with --peers naming the
	// nodes started before it. Otherwise all start at once, each listing
	// all the others.
	Sequential bool
	// PeersFile passes the peers in a --peers-file, one a line, instead of
	// --peers.
	PeersFile bool
	// StartTimeout bounds forming the cluster and each Restart; default 60 s.
	StartTimeout time.Duration
	// DNS gives every node a DNS responder (--dns-addr Proc.DNSAddr).
	DNS bool
}

// Procs is a cluster of real cairn processes on loopback with mutual TLS.
// Node i has its own loopback IP; its client API listens there and its peer
// port sits behind a fault-injecting TCP proxy on the same IP (the
// advertised --peer-addr), which knows the dialing node by the source IP of
// a connection, because cairn dials peers from the host of --peer-bind-addr.
// Every process is killed and every proxy closed when the test ends, and the
// nodes' output is logged if the test failed.
type Procs struct {
	t     testing.TB
	bin   string
	base  string // the test's directory: PKI, data dirs, peers files
	opts  ProcOptions
	procs []*Proc
	net   *faultNet
	http  *http.Client       // Do's, for tests of the wire itself
	cl    []*v2client.Client // Client's, one per node

	// PKI files: the CA and the client certificate of the identity "root".
	CAFile, ClientCertFile, ClientKeyFile string
	// ClientTLS is the TLS configuration of Do's client.
	ClientTLS *tls.Config
}

// Proc is one node of a Procs.
type Proc struct {
	Index        int
	Name         string // --name: n0, n1, ...
	IP           string // the node's own loopback IP
	ClientURL    string // https://IP:port, the advertised --addr
	PeerAddr     string // the advertised --peer-addr: the node's proxy
	PeerBindAddr string // --peer-bind-addr: where cairn listens, behind the proxy
	DNSAddr      string // --dns-addr (UDP and TCP) with ProcOptions.DNS
	DataDir      string
	CertFile     string // node certificate: URI SAN spiffe://<td>/node/<name>, IP SANs IP and 127.0.0.1
	KeyFile      string

	out *procOutput

	mu    sync.Mutex
	run   *procRun // the current or last process; nil before the first start
	peers []int    // --peers of the last start
}

// procRun is one process of a Proc.
type procRun struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// ProcMember is one entry of GET /v2/members.
type ProcMember = v2client.Member

// ProcStats is the part of GET /v2/stats/self that tests use.
type ProcStats = v2client.SelfStats

// procIPBlock numbers the Procs of this test binary, so that concurrent
// clusters use distinct loopback IPs.
var procIPBlock atomic.Uint32

// StartProcs makes a PKI, starts n cairn nodes from bin and waits until
// each is healthy and lists n members. It fails the test if they do not
// form one cluster within opts.StartTimeout.
func StartProcs(t testing.TB, bin string, n int, opts ProcOptions) *Procs {
	t.Helper()
	p := newProcs(t, bin, n, opts)
	if p.opts.Sequential {
		for i := range n {
			peers := make([]int, i)
			for j := range i {
				peers[j] = j
			}
			if err := p.Start(i, peers...); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitHealthy(i, p.opts.StartTimeout); err != nil {
				t.Fatalf("forming sequentially: %v", err)
			}
		}
	} else {
		for i := range n {
			if err := p.Start(i, p.others(i)...); err != nil {
				t.Fatal(err)
			}
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = p.WaitHealthy(i, p.opts.StartTimeout) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("forming a cluster of %d started at once: %v", n, err)
		}
	}
	p.WaitMembers(t, n)
	return p
}

// newProcs prepares the PKI, data dirs and proxies of n nodes without
// starting any process.
func newProcs(t testing.TB, bin string, n int, opts ProcOptions) *Procs {
	t.Helper()
	if n < 1 || n > 240 {
		t.Fatalf("clustertest: %d nodes; want 1 to 240", n)
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = cluster.DefaultHeartbeatInterval
	}
	if opts.ElectionTimeout == 0 {
		opts.ElectionTimeout = cluster.DefaultElectionTimeout
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	base := t.TempDir()
	p := &Procs{t: t, bin: bin, base: base, opts: opts, net: newFaultNet()}
	t.Cleanup(p.cleanup) // after TempDir's cleanup is registered: runs before it

	// Real processes read the test PKI from files: tlstest writes them.
	ca := tlstest.NewCA(t)
	pkiDir := filepath.Join(base, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p.CAFile = filepath.Join(pkiDir, "ca.crt")
	if err := ca.WriteFiles(p.CAFile, filepath.Join(pkiDir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	client := tlstest.WritePair(t, pkiDir, "client", p.CAFile, tlstest.IssueClient(t, ca, "root"))
	p.ClientCertFile, p.ClientKeyFile = client.CertFile, client.KeyFile
	var err error
	p.ClientTLS, err = tlsconf.ClientConfigFromFiles(client)
	if err != nil {
		t.Fatal(err)
	}
	p.http = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     p.ClientTLS,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}}

	prefix := fmt.Sprintf("127.%d.%d.", 1+os.Getpid()%250, 1+procIPBlock.Add(1)%250)
	for i := range n {
		pr := &Proc{Index: i, Name: "n" + strconv.Itoa(i), IP: prefix + strconv.Itoa(10+i), out: &procOutput{}}
		pr.DataDir = filepath.Join(base, pr.Name)
		if err := os.MkdirAll(pr.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		node := tlstest.WritePair(t, pkiDir, pr.Name, p.CAFile, tlstest.IssueNode(t, ca, ProcTrustDomain, pr.Name, pr.IP))
		pr.CertFile, pr.KeyFile = node.CertFile, node.KeyFile
		pr.ClientURL = "https://" + net.JoinHostPort(pr.IP, FreePortOn(t, pr.IP))
		pr.PeerBindAddr = net.JoinHostPort(pr.IP, FreePortOn(t, pr.IP))
		px, err := p.net.listen(i, pr.IP, net.JoinHostPort(pr.IP, "0"), pr.PeerBindAddr)
		if err != nil {
			t.Fatalf("proxy for %s: %v", pr.Name, err)
		}
		pr.PeerAddr = px.addr()
		if opts.DNS {
			pr.DNSAddr = net.JoinHostPort(pr.IP, FreePortOn(t, pr.IP))
		}
		p.procs = append(p.procs, pr)
		cl, err := v2client.New(v2client.Config{Endpoints: []string{pr.ClientURL}, TLS: p.ClientTLS,
			Timeout: p.RequestTimeout() + 5*time.Second, CAFile: p.CAFile, CertFile: p.ClientCertFile})
		if err != nil {
			t.Fatal(err)
		}
		p.cl = append(p.cl, cl)
	}
	return p
}

// Client is a v2 client of node i alone: tests aim each request at one
// node, so it does not fail over. Each attempt may take RequestTimeout
// plus 5 s; bound it further with the context.
func (p *Procs) Client(i int) *v2client.Client { return p.cl[i] }

// closeIdle drops every client's idle connections (after a node died).
func (p *Procs) closeIdle() {
	p.http.CloseIdleConnections()
	for _, c := range p.cl {
		c.Close()
	}
}

// others is every index but i.
func (p *Procs) others(i int) []int {
	var o []int
	for j := range p.procs {
		if j != i {
			o = append(o, j)
		}
	}
	return o
}

// Len is the number of nodes.
func (p *Procs) Len() int { return len(p.procs) }

// Proc is node i.
func (p *Procs) Proc(i int) *Proc { return p.procs[i] }

// ElectionTimeout is the nodes' --peer-election-timeout.
func (p *Procs) ElectionTimeout() time.Duration { return p.opts.ElectionTimeout }

// RequestTimeout is the bound within which a node answers a write or a
// linearizable read, even when cut off from the majority: the nodes'
// default, cluster.RequestTimeoutFor their election timeout.
func (p *Procs) RequestTimeout() time.Duration {
	return cluster.RequestTimeoutFor(p.opts.ElectionTimeout)
}

func (r *procRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (pr *Proc) current() *procRun {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.run
}

// Running reports whether node i's process is alive.
func (p *Procs) Running(i int) bool {
	r := p.procs[i].current()
	return r != nil && !r.exited()
}

// Kill sends SIGKILL to node i's process group and waits for the process.
// Killing a node that is not running does nothing.
func (p *Procs) Kill(i int) {
	r := p.procs[i].current()
	if r == nil {
		return
	}
	if !r.exited() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-r.done
	p.closeIdle()
}

// Pause sends SIGSTOP to node i's process group: the node freezes with
// its connections open, as a long GC pause or a stalled VM would. Resume
// ends it; Kill and Stop work on a paused node.
func (p *Procs) Pause(i int) error { return p.signalGroup(i, syscall.SIGSTOP) }

// Resume sends SIGCONT to node i's process group.
func (p *Procs) Resume(i int) error { return p.signalGroup(i, syscall.SIGCONT) }

func (p *Procs) signalGroup(i int, sig syscall.Signal) error {
	pr := p.procs[i]
	r := pr.current()
	if r == nil || r.exited() {
		return fmt.Errorf("%v %s: not running", sig, pr.Name)
	}
	if err := syscall.Kill(-r.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("%v %s: %w", sig, pr.Name, err)
	}
	return nil
}

// Stop sends SIGTERM to node i (and SIGCONT, should it be paused) and
// waits up to 15 s for it to exit, then kills it. It returns the exit
// error, or why the process had to be killed.
func (p *Procs) Stop(i int) error {
	pr := p.procs[i]
	r := pr.current()
	if r == nil || r.exited() {
		return nil
	}
	defer p.closeIdle()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s: %w", pr.Name, err)
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGCONT)
	select {
	case <-r.done:
		return r.err
	case <-time.After(15 * time.Second):
		p.Kill(i)
		return fmt.Errorf("stop %s: no exit within 15 s of SIGTERM; killed", pr.Name)
	}
}

// Restart stops node i if it runs (SIGTERM), starts it again on its data
// dir with the --peers of its last start, and waits until it is healthy.
func (p *Procs) Restart(i int) error {
	if err := p.Stop(i); err != nil {
		return err
	}
	pr := p.procs[i]
	pr.mu.Lock()
	peers := pr.peers
	pr.mu.Unlock()
	if err := p.Start(i, peers...); err != nil {
		return err
	}
	return p.WaitHealthy(i, p.opts.StartTimeout)
}

// Wipe empties the data dir of node i, which must not be running, as a
// lost disk would.
func (p *Procs) Wipe(i int) error {
	if p.Running(i) {
		return fmt.Errorf("wipe %s: still running", p.procs[i].Name)
	}
	dir := p.procs[i].DataDir
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

// WaitHealthy polls GET /health on node i until it answers 200
// {"health":"true"}, failing early if the process exits.
func (p *Procs) WaitHealthy(i int, timeout time.Duration) error {
	pr := p.procs[i]
	return poll.Check(timeout, func() error {
		if !p.Running(i) {
			return poll.Stop(fmt.Errorf("%s exited before it was healthy; output tail:\n%s", pr.Name, pr.Tail(4<<10)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := p.Client(i).Health(ctx); err != nil {
			return fmt.Errorf("%s: GET /health: %w", pr.Name, err)
		}
		return nil
	})
}

// WaitMembers waits until every running node outside a partition lists
// want members in GET /v2/members.
func (p *Procs) WaitMembers(t testing.TB, want int) {
	t.Helper()
	err := poll.Check(p.opts.StartTimeout, func() error {
		for i, pr := range p.procs {
			if !p.Running(i) || p.net.isolated(i) {
				continue
			}
			ms, err := p.Members(i)
			if err != nil {
				return err
			}
			if len(ms) != want {
				return fmt.Errorf("%s lists %d members: %+v", pr.Name, len(ms), ms)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("waiting for %d members: %v", want, err)
	}
}

// Do sends one raw request to node i with a deadline of RequestTimeout
// plus 5 s, for tests of the wire itself (statuses, headers, bodies as
// sent); other tests speak through Client. path is the URL path, query the
// raw query and form, when not empty, a urlencoded body. It returns the
// response with its body read.
func (p *Procs) Do(i int, method, path, query, form string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.RequestTimeout()+5*time.Second)
	defer cancel()
	return p.DoContext(ctx, i, method, path, query, form)
}

// DoContext is Do with the caller's context.
func (p *Procs) DoContext(ctx context.Context, i int, method, path, query, form string) (*http.Response, []byte, error) {
	ct := ""
	if form != "" {
		ct = "application/x-www-form-urlencoded"
	}
	return p.do(ctx, i, method, path, query, ct, form)
}

// DoJSON sends a request with a JSON body, as POST and PUT of /v2/members
// take, with Do's deadline.
func (p *Procs) DoJSON(i int, method, path, body string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.RequestTimeout()+5*time.Second)
	defer cancel()
	return p.do(ctx, i, method, path, "", "application/json", body)
}

func (p *Procs) do(ctx context.Context, i int, method, path, query, contentType, body string) (*http.Response, []byte, error) {
	u := p.procs[i].ClientURL + path
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// getJSON GETs path on node i within 3 s and decodes a 200 answer into v.
func (p *Procs) getJSON(i int, path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.Client(i).GetJSON(ctx, path, v); err != nil {
		return fmt.Errorf("%s: GET %s: %w", p.procs[i].Name, path, err)
	}
	return nil
}

// Members is node i's GET /v2/members.
func (p *Procs) Members(i int) ([]ProcMember, error) {
	var l struct {
		Members []ProcMember `json:"members"`
	}
	err := p.getJSON(i, "/v2/members", &l)
	return l.Members, err
}

// Stats is node i's GET /v2/stats/self.
func (p *Procs) Stats(i int) (ProcStats, error) {
	var s ProcStats
	err := p.getJSON(i, "/v2/stats/self", &s)
	return s, err
}

// FindLeader asks every running node outside a partition for its
// /v2/stats/self once and returns the index of the node that says it leads
// and that a majority of all nodes (itself included) name as leader.
func (p *Procs) FindLeader() (int, error) {
	stats := make([]ProcStats, len(p.procs))
	errs := make([]error, len(p.procs))
	var wg sync.WaitGroup
	for i := range p.procs {
		if !p.Running(i) || p.net.isolated(i) {
			errs[i] = errNotAsked
			continue
		}
		wg.Go(func() { stats[i], errs[i] = p.Stats(i) })
	}
	wg.Wait()
	var views []string
	for i, s := range stats {
		if errs[i] != nil {
			views = append(views, fmt.Sprintf("%s: %v", p.procs[i].Name, errs[i]))
			continue
		}
		views = append(views, fmt.Sprintf("%s(%s): %s, leader %q", p.procs[i].Name, s.ID, s.State, s.LeaderInfo.Leader))
		if s.State != "StateLeader" || s.ID == "" {
			continue
		}
		votes := 0
		for j, o := range stats {
			if errs[j] == nil && o.LeaderInfo.Leader == s.ID {
				votes++
			}
		}
		if 2*votes > len(p.procs) {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no leader named by a majority of %d: %s", len(p.procs), strings.Join(views, "; "))
}

var errNotAsked = errors.New("not running or partitioned")

// Leader polls FindLeader until it finds a leader, for up to 20 election
// timeouts (at least 10 s), and returns its index.
func (p *Procs) Leader(t testing.TB) int {
	t.Helper()
	leader := -1
	err := poll.Check(max(20*p.opts.ElectionTimeout, 10*time.Second), func() error {
		var err error
		leader, err = p.FindLeader()
		return err
	})
	if err != nil {
		t.Fatalf("waiting for a leader: %v", err)
	}
	return leader
}

// Output is everything node i wrote, over all its starts.
func (pr *Proc) Output() string { return pr.out.String() }

// Tail is the last n bytes of Output.
func (pr *Proc) Tail(n int) string {
	s := pr.out.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

func (p *Procs) cleanup() {
	var wg sync.WaitGroup
	for i := range p.procs {
		wg.Go(func() { p.Kill(i) })
	}
	wg.Wait()
	p.net.close()
	p.closeIdle()
	if p.t.Failed() {
		for _, pr := range p.procs {
			p.t.Logf("--- %s (%s, peer %s) output, last 16 KiB ---\n%s", pr.Name, pr.ClientURL, pr.PeerAddr, pr.Tail(16<<10))
		}
		if s := p.net.strayConns(); len(s) > 0 {
			p.t.Logf("peer connections from no node's IP: %v", s)
		}
		p.t.Logf("--- peer proxy events (the last %d) ---\n%s", pxEvents, strings.Join(p.net.eventLog(), "\n"))
	}
}
