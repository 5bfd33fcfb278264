package e2e

import (
	"net/http"
	"slices"
	"testing"
)

// TestNormalize pins the differential harness's normalization.
func TestNormalize(t *testing.T) {
	tests := []struct {
		name, body, want string
		ttls             []int64
	}{
		{
			name: "event",
			body: `{"action":"set","node":{"key":"/q/00000000000000000107","value":"12345678901234567890123","expiration":"2026-11-26T17:00:53.123456789Z","ttl":99,"modifiedIndex":107,"createdIndex":107},"prevNode":{"key":"/q","value":"x","modifiedIndex":100,"createdIndex":3}}` + "\n",
			want: `{"action":"set","node":{"key":"/q/k+7","value":"12345678901234567890123","expiration":"E","ttl":T,"modifiedIndex":i+7,"createdIndex":i+7},"prevNode":{"key":"/q","value":"x","modifiedIndex":i+0,"createdIndex":i-97}}` + "\n",
			ttls: []int64{99},
		},
		{
			name: "local expiration is not etcd 2.x",
			body: `{"expiration":"2026-11-26T17:00:53+01:00","ttl":-1}`,
			want: `{"expiration":"BAD(2026-11-26T17:00:53+01:00)","ttl":T}`,
			ttls: []int64{-1},
		},
		{
			name: "cas cause",
			body: `{"errorCode":101,"message":"Compare failed","cause":"[bad != five] [101 != 104]","index":104}`,
			want: `{"errorCode":101,"message":"Compare failed","cause":"[bad != five] [i+1 != i+4]","index":i+4}`,
		},
		{
			name: "cleared cause, parse error index",
			body: `{"errorCode":401,"message":"m","cause":"the requested history has been cleared [102/101]","index":0}`,
			want: `{"errorCode":401,"message":"m","cause":"the requested history has been cleared [i+2/i+1]","index":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := normalize(100, response{status: 200, header: http.Header{"X-Etcd-Index": {"105"}}, body: []byte(tt.body)})
			if n.body != tt.want || !slices.Equal(n.ttls, tt.ttls) {
				t.Errorf("normalize:\n got %s %v\nwant %s %v", n.body, n.ttls, tt.want, tt.ttls)
			}
			if n.head != "X-Etcd-Index: i+5\n" {
				t.Errorf("head = %q", n.head)
			}
		})
	}
	a := norm{status: 200, body: "b", ttls: []int64{100}}
	if d := a.diff(norm{status: 200, body: "b", ttls: []int64{99}}); d != "" {
		t.Errorf("ttl within 1 differs: %s", d)
	}
	if d := a.diff(norm{status: 200, body: "b", ttls: []int64{98}}); d == "" {
		t.Error("ttl 2 apart compares equal")
	}
}
