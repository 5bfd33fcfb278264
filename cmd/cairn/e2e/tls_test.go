package e2e

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"
)

// TestTLS checks that a client with a certificate of the cluster CA is
// served, over TLS 1.3 by default. Every kind of connection that must be
// refused, on the client and the peer port, is in TestTLSMatrix.
func TestTLS(t *testing.T) {
	t.Parallel()
	s := StartCairn(t, &CairnConfig{Bin: needCairn(t), PKI: testPKI})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	resp, body := s.Get(t, "/v2/keys/", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/keys/: %d %s", resp.StatusCode, body)
	}
	if v := resp.TLS.Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3 by default", tls.VersionName(v))
	}
}
