package e2e

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group, so that killing the
// group also ends what it spawned (etcdctl exec-watch runs a shell), and
// asks the kernel to kill it if the test binary dies without cleaning up.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup signals the child's process group.
func killGroup(cmd *exec.Cmd, sig syscall.Signal) {
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}
