//go:build unix

package modcli

import (
	"os"
	"os/exec"
	"syscall"
)

// setGroup makes the command the leader of a process group of its own,
// ended by the kernel if cairn dies (where the kernel can do that).
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

// signalGroup sends sig to p's process group.
func signalGroup(p *os.Process, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return p.Signal(sig)
	}
	return syscall.Kill(-p.Pid, s)
}
