package servertest_test

import (
	"net/http"
	"testing"

	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
)

func TestStartCluster(t *testing.T) {
	c := servertest.StartCluster(t, 3, nil)
	for _, s := range c {
		resp, err := s.Client.Get(s.URL + "/v2/members")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", s.URL, resp.Status)
		}
	}
}
