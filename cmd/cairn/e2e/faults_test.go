//go:build linux

package e2e

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/faults"
)

// TestFaults is the fault-injection suite (package faults): reads, writes
// and CAS from concurrent clients on real cairn processes while members
// are killed and restarted, paused and partitioned, and a porcupine check
// of the history. It runs alone (not in parallel): it is the load.
//
// Environment: CAIRN_FAULTS_DURATION (default 50s) is how long faults are
// injected, CAIRN_FAULTS_MEMBERS (default 3) the cluster size,
// CAIRN_FAULTS_OUT where an illegal history's visualization goes,
// CAIRN_FAULTS_SEED a seed to replay the choices of, CAIRN_FAULTS_LOG_STORE
// the members' --log-store (default boltdb), and
// CAIRN_FAULTS_BREAK=stale-reads reads with stale=true, which must be caught:
// the test then passes only if the check fails.
func TestFaults(t *testing.T) {
	cfg := faults.Config{Logf: t.Logf}
	members := 3
	if s := os.Getenv("CAIRN_FAULTS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CAIRN_FAULTS_DURATION=%q: %v (write e.g. 10m)", s, err)
		}
		cfg.Duration = d
	}
	if s := os.Getenv("CAIRN_FAULTS_MEMBERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 3 {
			t.Fatalf("CAIRN_FAULTS_MEMBERS=%q: want 3 or more", s)
		}
		members = n
	}
	if s := os.Getenv("CAIRN_FAULTS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_FAULTS_SEED=%q: %v", s, err)
		}
		cfg.Seed = seed
	}
	broken := os.Getenv("CAIRN_FAULTS_BREAK")
	switch broken {
	case "":
	case "stale-reads":
		cfg.StaleReads = true
	default:
		t.Fatalf("CAIRN_FAULTS_BREAK=%q: the one broken read path is stale-reads", broken)
	}

	var opts clustertest.ProcOptions
	if s := os.Getenv("CAIRN_FAULTS_LOG_STORE"); s != "" {
		opts.Args = []string{"--log-store", s}
		t.Logf("log store: %s", s)
	}
	p := clustertest.StartProcs(t, needCairn(t), members, opts)
	rep, err := faults.Run(p, cfg)
	if rep != nil {
		t.Logf("%d members, %s", members, rep.Summary())
	}
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case broken != "" && rep.Verdict.Result == porcupine.Illegal:
		t.Logf("CAIRN_FAULTS_BREAK=%s: caught, as it must be", broken)
	case broken != "":
		t.Errorf("CAIRN_FAULTS_BREAK=%s: the check passed a read path that is not linearizable", broken)
	case rep.Failed():
		t.Errorf("the history is not what a linearizable store gives (seed %d, above); porcupine's visualization: %s",
			rep.Seed, rep.Verdict.Visualization)
	case rep.Verdict.Result == porcupine.Unknown:
		t.Logf("porcupine ran out of time: the history is unchecked")
	}
}
