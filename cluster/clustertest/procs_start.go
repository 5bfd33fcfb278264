//go:build linux

package clustertest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// How a node's process is started: its command line, its environment and
// where its output goes.

// Args are the command-line arguments that start node i with --peers
// naming the advertised peer addresses of the nodes peers. With
// ProcOptions.PeersFile it writes them to a file for --peers-file.
func (p *Procs) Args(i int, peers ...int) ([]string, error) {
	pr := p.procs[i]
	addr := strings.TrimPrefix(pr.ClientURL, "https://")
	args := []string{"serve",
		"--name", pr.Name, "--data-dir", pr.DataDir,
		"--addr", addr, "--bind-addr", addr,
		"--peer-addr", pr.PeerAddr, "--peer-bind-addr", pr.PeerBindAddr,
		"--ca-file", p.CAFile, "--cert-file", pr.CertFile, "--key-file", pr.KeyFile,
		"--peer-heartbeat-interval", p.opts.HeartbeatInterval.String(),
		"--peer-election-timeout", p.opts.ElectionTimeout.String(),
	}
	// Without ProcOptions.DNS, DNS is off: nodes would share the default port.
	args = append(args, "--dns-addr", pr.DNSAddr)
	if p.opts.SnapshotCount != 0 {
		args = append(args, "--snapshot-count", strconv.FormatUint(p.opts.SnapshotCount, 10))
	}
	if len(peers) > 0 {
		addrs := make([]string, len(peers))
		for k, j := range peers {
			addrs[k] = p.procs[j].PeerAddr
		}
		if p.opts.PeersFile {
			f := filepath.Join(p.base, pr.Name+".peers")
			if err := os.WriteFile(f, []byte(strings.Join(addrs, "\n")+"\n"), 0o600); err != nil {
				return nil, err
			}
			args = append(args, "--peers-file", f)
		} else {
			args = append(args, "--peers", strings.Join(addrs, ","))
		}
	}
	return append(args, p.opts.Args...), nil
}

// Start starts node i, which must not be running, with --peers naming the
// nodes peers, and returns without waiting for it.
func (p *Procs) Start(i int, peers ...int) error {
	pr := p.procs[i]
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.run != nil && !pr.run.exited() {
		return fmt.Errorf("start %s: already running", pr.Name)
	}
	args, err := p.Args(i, peers...)
	if err != nil {
		return fmt.Errorf("start %s: %w", pr.Name, err)
	}
	cmd := exec.Command(p.bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, p.opts.Env...)
	cmd.Stdout, cmd.Stderr = pr.out, pr.out
	// Own process group, so that a kill reaches what it spawned; killed by
	// the kernel if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(pr.out, "=== clustertest: %s %s\n", time.Now().Format("15:04:05.000"), strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (%s): %w", pr.Name, p.bin, err)
	}
	r := &procRun{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		fmt.Fprintf(pr.out, "=== clustertest: %s exited: %v\n", time.Now().Format("15:04:05.000"), r.err)
		close(r.done)
	}()
	pr.run, pr.peers = r, peers
	return nil
}

// procOutput is a process's combined output, safe for exec's writers and
// the test's readers.
type procOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *procOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(b)
}

func (o *procOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
