package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
)

// TestBenchCommand: the cobra wiring of cairn bench (the workloads are
// tested in package bench).
func TestBenchCommand(t *testing.T) {
	s := servertest.Start(t, nil)
	env := []string{"CAIRN_ENDPOINTS=" + s.URL, "CAIRN_DATA_DIR=" + s.Config().DataDir}

	out, _, err := runCairn(t, env, "bench", "get", "--stale", "--requests", "8", "--clients", "2", "--keys", "4", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Label    string `json:"label"`
		Requests int    `json:"requests"`
		Errors   int    `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Label != "get stale" || r.Requests != 8 || r.Errors != 0 {
		t.Errorf("bench get: %+v, %v:\n%s", r, err, out)
	}

	out, _, err = runCairn(t, env, "bench", "compare", "--a", s.URL, "--b", s.URL, "--rounds", "1",
		"--a-name", "one", "--b-name", "two", "--requests", "4", "put,clients=2", "refresh,keys=3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ratios are two/one") || !strings.Contains(out, "refresh (3 keys)") {
		t.Errorf("bench compare:\n%s", out)
	}

	for _, bad := range [][]string{
		{"bench", "compare", "--a", s.URL, "put"},
		{"bench", "compare", "--a", s.URL, "--b", s.URL},
		{"bench", "compare", "--a", s.URL, "--b", s.URL, "delete"},
		{"bench", "put", "--requests", "1", "--endpoints", "http://127.0.0.1:1"},
		{"bench", "refresh", "--ttl", "0.5s"},
	} {
		if _, _, err := runCairn(t, env, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		} else {
			t.Logf("%v: %v", bad, err)
		}
	}
}
