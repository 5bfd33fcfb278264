package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A mistyped subcommand fails with exit status 1, naming it and what the
// user may have meant, as etcdctl does; cobra's default for a command
// group is to print its help and succeed.
func TestUnknownSubcommands(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		command string // the group, as the message names it
		suggest string
	}{
		{[]string{"member", "lst"}, "cairn member", "list"},
		{[]string{"kv", "gett", "/x"}, "cairn kv", "get"},
		{[]string{"snapshot", "sav", "f"}, "cairn snapshot", "save"},
		{[]string{"cert", "issu"}, "cairn cert", "issue"},
		{[]string{"config", "sho"}, "cairn config", "show"},
		{[]string{"sevre"}, "cairn", "serve"},
		{[]string{"member", "frobnicate"}, "cairn member", ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr, nil)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			msg := stderr.String()
			mistyped := tc.args[strings.Count(tc.command, " ")]
			if want := `unknown command "` + mistyped + `" for "` + tc.command + `"`; !strings.Contains(msg, want) {
				t.Errorf("stderr %q, want %q", msg, want)
			}
			if tc.suggest != "" && !strings.Contains(msg, "Did you mean this?\n\t"+tc.suggest+"\n") {
				t.Errorf("stderr %q does not suggest %q", msg, tc.suggest)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing (no help on a mistake)", stdout.String())
			}
		})
	}
}

// Correct commands still succeed: a group alone prints its help, and a
// subcommand runs.
func TestKnownCommandsExitZero(t *testing.T) {
	for _, args := range [][]string{
		{"member"}, {"kv"}, {"config"}, {"member", "--help"}, {"--version"},
		{"config", "show", "--config", emptyConfig(t)},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr, nil); code != 0 {
			t.Errorf("cairn %s: exit status %d, stderr %q", strings.Join(args, " "), code, stderr.String())
		}
		if stdout.Len() == 0 {
			t.Errorf("cairn %s printed nothing", strings.Join(args, " "))
		}
	}
}

// exitError is an error with its own exit status, as kv's.
type exitError struct{ code int }

func (e exitError) Error() string { return "failed" }
func (e exitError) ExitCode() int { return e.code }

// reportedError has been printed by its command already.
type reportedError struct{ exitError }

func (reportedError) Reported() bool { return true }

// main exits with an error's ExitCode, else 1, and prints the error unless
// its command did.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err   error
		code  int
		print bool
	}{
		{errors.New("plain"), 1, true},
		{exitError{4}, 4, true},
		{fmt.Errorf("wrapped: %w", exitError{2}), 2, true},
		{reportedError{exitError{3}}, 3, false},
	} {
		var stderr bytes.Buffer
		if code := exitStatus(tc.err, &stderr); code != tc.code {
			t.Errorf("%v: exit status %d, want %d", tc.err, code, tc.code)
		}
		if printed := strings.HasPrefix(stderr.String(), "cairn: "); printed != tc.print {
			t.Errorf("%v: printed %q", tc.err, stderr.String())
		}
	}
}

// `cairn config show` prints TOML that cairn serve --config loads into the
// same configuration.
func TestConfigShowRoundTrip(t *testing.T) {
	environ := []string{"CAIRN_DNS_NS=ns1.example,ns2.example"}
	flags := []string{"--name", "n1", "--peers", "a:1,b:2", "--peer-election-timeout", "3s",
		"--rate-limit", "50", "--log-requests", "--metrics-addr", "127.0.0.1:9090", "--dns-addr", ""}
	var out, stderr bytes.Buffer
	if code := run(context.Background(), append([]string{"config", "show", "--config", emptyConfig(t)}, flags...), &out, &stderr, environ); code != 0 {
		t.Fatalf("config show: %d %s", code, stderr.String())
	}
	want := depRun(t, "serve with flags", append([]string{"serve"}, flags...), environ)
	file := filepath.Join(t.TempDir(), "shown.toml")
	if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got := depRun(t, "serve --config", []string{"serve", "--config", file}, nil)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("serve --config <config show output> gives\n%+v\nwant\n%+v\n%s", got, want, out.String())
	}
}
