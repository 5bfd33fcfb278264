package modcli

import "syscall"

// setDeathSignal has the kernel SIGKILL the command when cairn ends
// without stopping it (SIGKILL, a crash): the lock the command runs under
// is no longer renewed, and its process group, being its own, would not
// get the signal that killed cairn.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
