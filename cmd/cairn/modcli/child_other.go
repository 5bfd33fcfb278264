//go:build !unix

package modcli

import (
	"os"
	"os/exec"
)

// setGroup: process groups are a unix notion; the command is signalled
// alone.
func setGroup(*exec.Cmd) {}

// signalGroup ends p (the only signal there is to send).
func signalGroup(p *os.Process, sig os.Signal) error {
	if sig == os.Interrupt {
		return p.Signal(sig)
	}
	return p.Kill()
}
