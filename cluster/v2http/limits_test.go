package v2http

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/store"
)

// count is the number of open watches of client.
func (l *watchLimiter) count(client string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[client]
}

func TestDefaultClientID(t *testing.T) {
	withCert := httptest.NewRequest("GET", "/", nil)
	withCert.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{
		Subject:      pkix.Name{CommonName: "web-1"},
		SerialNumber: big.NewInt(0xbeef),
	}}}
	v6 := httptest.NewRequest("GET", "/", nil)
	v6.RemoteAddr = "[2001:db8::1]:4242"
	tests := []struct {
		name string
		r    string
		want string
	}{
		{"certificate", DefaultClientID(withCert), "cert:web-1/beef"},
		{"address without port", DefaultClientID(httptest.NewRequest("GET", "/", nil)), "addr:192.0.2.1"},
		{"ipv6", DefaultClientID(v6), "addr:2001:db8::1"},
	}
	for _, tt := range tests {
		if tt.r != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.r, tt.want)
		}
	}
}

func TestWatchLimiter(t *testing.T) {
	l := newWatchLimiter(2, 3)
	steps := []struct {
		op     string
		client string
		why    int
		count  int
	}{
		{"acquire", "a", watchOK, 1},
		{"acquire", "a", watchOK, 2},
		{"acquire", "a", watchClientFull, 2},
		{"acquire", "b", watchOK, 1},
		{"acquire", "c", watchMemberFull, 0},
		{"release", "a", watchOK, 1},
		{"acquire", "c", watchOK, 1},
		{"release", "c", watchOK, 0},
		{"acquire", "a", watchOK, 2},
		{"release", "a", watchOK, 1},
		{"release", "a", watchOK, 0},
	}
	for i, s := range steps {
		why := watchOK
		if s.op == "acquire" {
			why = l.acquire(s.client)
		} else {
			l.release(s.client)
		}
		if why != s.why || l.count(s.client) != s.count {
			t.Fatalf("step %d %s %s: %d count %d; want %d %d", i, s.op, s.client, why, l.count(s.client), s.why, s.count)
		}
	}
	if l.total != 1 {
		t.Errorf("total %d, want 1", l.total)
	}
	if len(l.counts) != 1 {
		t.Errorf("idle clients kept: %v", l.counts)
	}
}

// timedCluster is a Cluster with a request timeout of its own.
type timedCluster struct {
	*fakeCluster
	timeout time.Duration
}

func (c timedCluster) RequestTimeout() time.Duration { return c.timeout }

// The request timeout has one default, the cluster's: a Cluster that has a
// bound lends it to the handler, and one that does not gets cluster's
// default for the default election timeout.
func TestRequestTimeoutDefault(t *testing.T) {
	node := clustertest.New(t, 1).Node(0)
	tests := []struct {
		name string
		cfg  Config
		want time.Duration
	}{
		{"a Cluster without a bound", Config{Cluster: newFakeCluster(store.Config{})}, cluster.RequestTimeoutFor(cluster.DefaultElectionTimeout)},
		{"a Cluster with a bound", Config{Cluster: timedCluster{newFakeCluster(store.Config{}), 3 * time.Second}}, 3 * time.Second},
		{"a Cluster whose bound is unset", Config{Cluster: timedCluster{newFakeCluster(store.Config{}), 0}}, cluster.RequestTimeoutFor(cluster.DefaultElectionTimeout)},
		{"a cluster.Node", Config{Cluster: node}, node.RequestTimeout()},
		{"set in Config", Config{Cluster: node, RequestTimeout: 2 * time.Second}, 2 * time.Second},
	}
	if got := cluster.RequestTimeoutFor(cluster.DefaultElectionTimeout); got != 7*time.Second {
		t.Errorf("the default request timeout is %v; etcd's is 7 s (5 s + 2 × 1 s)", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if h.cfg.RequestTimeout != tt.want {
				t.Errorf("RequestTimeout = %v, want %v", h.cfg.RequestTimeout, tt.want)
			}
		})
	}
}
