package modcli

import "syscall"

// setDeathSignal has the kernel SIGKILL the command when cairn ends
// without stopping it (SIGKILL, a crash): the lock the command runs under
// is no longer renewed, and its process group, being its own, would not
// get the signal that killed cairn. The kernel ties the signal to the
// thread that started the command; Go's runtime ends a thread only when a
// goroutine locked to it exits, which cairn lock and elect never do.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
