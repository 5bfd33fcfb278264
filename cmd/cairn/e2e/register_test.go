//go:build linux

package e2e

// `cairn register`, the registration sidecar, against real cairn
// processes: a signal deregisters at once; a failing --check-exec lets the
// record expire and a passing one brings it back; and when the member it
// talks to is killed, it moves to another one without the record ever
// lapsing. Linux only, for clustertest.StartProcs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// regRecord is the record cairn register writes in these tests.
type regRecord struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

var regArgs = []string{"--service", "web", "--host", "10.0.0.5", "--port", "8080"}

// regKey is the key of instance inst of service web.
func regKey(inst string) string { return "/skydns/internal/cairn/web/" + inst }

// startRegister runs `cairn register` with args.
func startRegister(t *testing.T, inst string, args ...string) *Proc {
	t.Helper()
	args = append(append([]string{"register", "--instance", inst}, regArgs...), args...)
	cmd := exec.Command(needCairn(t), args...)
	cmd.Env = cleanEnv("CAIRN_")
	return StartProc(t, "cairn register "+inst, cmd)
}

// serverConn are the connection flags for s.
func serverConn(s *Server) []string {
	return []string{"--endpoints", s.URL, "--cacert", s.Files.CAFile, "--cert", s.Files.CertFile, "--key", s.Files.KeyFile}
}

// registered checks that a read answered the test's record with a TTL of
// at most ttl, and returns its node.
func registered(ev *store.Event, err error, ttl int64) (*store.NodeExtern, error) {
	if err != nil {
		return nil, fmt.Errorf("not registered: %w", err)
	}
	var r regRecord
	if ev.Node.Value == nil || json.Unmarshal([]byte(*ev.Node.Value), &r) != nil || r.Host != "10.0.0.5" || r.Port != 8080 || ev.Node.TTL < 1 || ev.Node.TTL > ttl {
		return ev.Node, fmt.Errorf("registered as %+v; want host 10.0.0.5, port 8080 and a ttl within 1-%d", ev.Node, ttl)
	}
	return ev.Node, nil
}

// gone checks that a read answered etcd's "key not found".
func gone(ev *store.Event, err error) error {
	var se *store.Error
	if !errors.As(err, &se) || se.ErrorCode != store.EcodeKeyNotFound {
		return fmt.Errorf("%+v, %v; want 404 with errorCode 100", ev, err)
	}
	return nil
}

// getKey reads key from s.
func getKey(t *testing.T, s *Server, key string) (*store.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Client(t).Get(ctx, key, v2client.GetOptions{})
}

func TestRegisterSignal(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			inst := "web-" + strings.ToLower(strings.Fields(sig.String())[0])
			reg := startRegister(t, inst, append(serverConn(s), "--ttl", "10s")...)
			Poll(t, 20*time.Second, "the registration", func() error {
				if done, err := reg.Exited(); done {
					t.Fatalf("cairn register exited: %v", err)
				}
				ev, err := getKey(t, s, regKey(inst))
				_, err = registered(ev, err, 10)
				return err
			})
			if err := reg.Stop(sig, 15*time.Second); err != nil {
				t.Fatalf("cairn register on %v: %v; want exit status 0", sig, err)
			}
			// At once: no poll.
			if err := gone(getKey(t, s, regKey(inst))); err != nil {
				t.Fatalf("right after cairn register exited: %v", err)
			}
			if !strings.Contains(reg.Output(), "msg=deregistered") {
				t.Errorf("no deregistered line in the log")
			}
		})
	}
}

func TestRegisterCheckExec(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	ready := filepath.Join(t.TempDir(), "ready")
	if err := os.WriteFile(ready, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const inst = "web-checked"
	reg := startRegister(t, inst, append(serverConn(s), "--ttl", "2s",
		"--check-exec", "test -e "+ready, "--check-interval", "200ms")...)
	Poll(t, 20*time.Second, "the registration", func() error {
		ev, err := getKey(t, s, regKey(inst))
		_, err = registered(ev, err, 2)
		return err
	})

	// The check fails: no more heartbeats, and the record expires.
	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	Poll(t, 10*time.Second, "the record to expire", func() error {
		return gone(getKey(t, s, regKey(inst)))
	})
	t.Logf("expired %v after the check began to fail (ttl 2s)", time.Since(failed).Round(time.Millisecond))
	if done, err := reg.Exited(); done {
		t.Fatalf("cairn register exited: %v", err)
	}
	out := reg.Output()
	if !strings.Contains(out, `msg="check failing`) || strings.Contains(out, "deregistered") {
		t.Fatalf("want a check failing line and no deregistration:\n%s", out)
	}

	// It passes again: registered at once, not after a heartbeat interval.
	if err := os.WriteFile(ready, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	Poll(t, 10*time.Second, "the registration after the check passes again", func() error {
		ev, err := getKey(t, s, regKey(inst))
		_, err = registered(ev, err, 2)
		return err
	})
	if !strings.Contains(reg.Output(), `msg="check passing"`) {
		t.Error("no check passing line")
	}
	if err := reg.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := gone(getKey(t, s, regKey(inst))); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
}

// TestRegisterNodeKill kills -9 the member cairn register talks to (the
// leader, so that the failover also waits out an election) and checks, by
// reading another member's replica every 100 ms, that the record never
// lapses, and that heartbeats go on through the survivors.
func TestRegisterNodeKill(t *testing.T) {
	t.Parallel()
	const ttl = 6 // seconds: a heartbeat every 2 s
	p := startProcs(t, 3, clustertest.ProcOptions{})
	victim := p.Leader(t)
	reader, third := (victim+1)%3, (victim+2)%3
	const inst = "web-ha"
	key := regKey(inst)
	eps := []string{p.Proc(victim).ClientURL, p.Proc(reader).ClientURL, p.Proc(third).ClientURL}
	reg := startRegister(t, inst, "--endpoints", strings.Join(eps, ","),
		"--cacert", p.CAFile, "--cert", p.ClientCertFile, "--key", p.ClientKeyFile,
		"--ttl", fmt.Sprintf("%ds", ttl))

	read := func() (*store.NodeExtern, error) {
		ev, err := clGet(p, reader, key, "stale=true")
		return registered(ev, err, ttl)
	}
	Poll(t, 20*time.Second, "the registration, read on "+p.Proc(reader).Name, func() error {
		_, err := read()
		return err
	})

	// From now on the record must be there at every read. The reader is
	// a workload, not a wait: it samples every 100 ms until the test has
	// seen what it waits for (with Poll) and counts the lapses.
	var (
		mu     sync.Mutex
		lapses []string
		reads  int
		beats  = map[uint64]bool{} // modifiedIndexes seen since the kill
		killed time.Time
	)
	ctx, stopReading := context.WithCancel(context.Background())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n, err := read()
			mu.Lock()
			reads++
			switch {
			case err != nil:
				lapses = append(lapses, time.Now().Format("15:04:05.000")+": "+err.Error())
			case !killed.IsZero():
				beats[n.ModifiedIndex] = true
			}
			mu.Unlock()
		}
	}()
	defer func() { stopReading(); <-readerDone }()

	p.Kill(victim)
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	t.Logf("killed %s (the leader) at %s", p.Proc(victim).Name, killed.Format("15:04:05.000"))
	Poll(t, 3*ttl*time.Second, "cairn register to switch to another member", func() error {
		if !strings.Contains(reg.Output(), `msg="endpoint switched"`) {
			return fmt.Errorf("no endpoint switched line yet")
		}
		return nil
	})
	// It had registered through the first endpoint, the victim.
	if !strings.Contains(reg.Output(), "from="+p.Proc(victim).ClientURL) {
		t.Fatalf("the switch was not away from %s, the first endpoint:\n%s", p.Proc(victim).Name, reg.Output())
	}
	t.Logf("switched %v after the kill", time.Since(killed).Round(time.Millisecond))

	// Heartbeats through the survivors for longer than a TTL: five versions
	// of the record since the kill are four refreshes, 8 s at one per 2 s.
	Poll(t, 4*ttl*time.Second, "four heartbeats after the kill", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(beats) < 5 {
			return fmt.Errorf("%d versions of the record read since the kill", len(beats))
		}
		return nil
	})
	stopReading()
	<-readerDone
	if len(lapses) > 0 {
		t.Errorf("the record lapsed in %d of %d reads on %s: %v", len(lapses), reads, p.Proc(reader).Name, lapses)
	}
	t.Logf("%d reads on %s over %v, none missed the record", reads, p.Proc(reader).Name, time.Since(killed).Round(time.Millisecond))

	if err := reg.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := gone(clGet(p, reader, key, "")); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
}
