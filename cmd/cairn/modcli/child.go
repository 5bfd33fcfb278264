package modcli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Exit statuses of cairn lock and cairn elect other than the command's
// own (env(1) and timeout(1) use the same).
const (
	ExitFailed     = 125 // cairn failed: the lock was lost, not had in time, or no member answered
	ExitCannotRun  = 126 // the command was found but could not be run
	ExitNotFound   = 127 // the command was not found
	exitSignalBase = 128 // + N: the command (or cairn, while waiting) ended by signal N
)

// child is the command run under a lock, in its own process group so that
// a lost lock ends everything it started.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's; read after done is closed
}

// startChild runs argv with env. Its process group is its own: a signal
// the terminal sends to cairn's group reaches the command through cairn
// (forwarded), not twice.
func startChild(argv, env []string, stdin io.Reader, stdout, stderr io.Writer, waitDelay time.Duration) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// Output copied through pipes (stdout not a file) is not waited for
	// forever after the command exits: a background process it left may
	// hold the pipe.
	cmd.WaitDelay = waitDelay
	setGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, startError(argv[0], err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// startError is an *ExitError with status 127 for a command not found,
// 126 for one that cannot be run.
func startError(name string, err error) error {
	code := ExitCannotRun
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		code = ExitNotFound
	}
	return &ExitError{Code: code, Err: fmt.Errorf("run %s: %w", name, err)}
}

// signal sends sig to the command's process group.
func (c *child) signal(sig os.Signal) {
	_ = signalGroup(c.cmd.Process, sig)
}

// terminate sends SIGTERM to the command's process group and, if it has
// not exited within grace, SIGKILL; it returns once the command has exited.
func (c *child) terminate(grace time.Duration) {
	c.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	}
	c.signal(syscall.SIGKILL)
	<-c.done
}

// exitCode is the command's exit status, 128+N if signal N ended it.
func (c *child) exitCode() int {
	st := c.cmd.ProcessState
	if st == nil {
		return ExitFailed
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitSignalBase + int(ws.Signal())
	}
	if code := st.ExitCode(); code >= 0 {
		return code
	}
	return ExitFailed
}

// ExitError ends cairn lock or cairn elect with status Code. Err, when
// not nil, is the message main prints; nil means there is nothing to say
// (the command's own status).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap is Err.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the status to exit with.
func (e *ExitError) ExitCode() int { return e.Code }

// Reported says main has nothing to print: the status is the command's.
func (e *ExitError) Reported() bool { return e.Err == nil }

// exitWith is the error that makes cairn exit with code (nil for 0).
func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}
