//go:build unix && !linux

package modcli

import "syscall"

// setDeathSignal: only Linux has a parent-death signal; elsewhere a
// command outlives a cairn that is SIGKILLed.
func setDeathSignal(*syscall.SysProcAttr) {}
