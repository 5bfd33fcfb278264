package modcli

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestLockFlags: bad command lines exit 125 with what to write instead,
// before any request.
func TestLockFlags(t *testing.T) {
	tests := []struct {
		args []string
		dash int
		want string
	}{
		{[]string{"x"}, -1, "no command to run"},
		{[]string{}, -1, "give a name first"},
		{[]string{"x", "true"}, 0, "give a name first"},
		{[]string{"x", "y", "true"}, 2, `one name before --, not ["x" "y"]`},
		{[]string{"x", "true", "--ttl", "500ms"}, 1, "--ttl 500ms: at least 1s"},
		{[]string{"x", "true", "--timeout", "-1s"}, 1, "--timeout -1s: not negative"},
		{[]string{"x", "true", "--grace", "-1s"}, 1, "--grace -1s: not negative"},
		{[]string{"x", "true", "--value", "-"}, 1, `--value "-" is the value of every entry`},
	}
	for _, tc := range tests {
		fs := pflag.NewFlagSet("lock", pflag.ContinueOnError)
		f := AddLockFlags(fs)
		args := tc.args
		var flags []string
		if i := indexOf(args, "--ttl", "--timeout", "--grace", "--value"); i >= 0 {
			args, flags = args[:i], args[i:]
		}
		if err := fs.Parse(flags); err != nil {
			t.Fatal(err)
		}
		err := f.Run(context.Background(), args, tc.dash, Streams{Stdout: io.Discard, Stderr: io.Discard}, nil)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitFailed || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want status 125 and %q", tc.args, err, tc.want)
		}
	}
}

// TestElectFlags: --name or --observe, not both; --observe runs nothing.
func TestElectFlags(t *testing.T) {
	tests := []struct {
		flags, args []string
		dash        int
		want        string
	}{
		{nil, []string{"db"}, -1, "--name is required"},
		{[]string{"--observe", "--name", "n1"}, []string{"db"}, -1, "--observe campaigns for no one"},
		{[]string{"--observe"}, []string{"db", "true"}, 1, "--observe campaigns for no one"},
		{[]string{"--name", "n1"}, []string{"true"}, 0, "give a name first"},
	}
	for _, tc := range tests {
		fs := pflag.NewFlagSet("elect", pflag.ContinueOnError)
		f := AddElectFlags(fs)
		if err := fs.Parse(tc.flags); err != nil {
			t.Fatal(err)
		}
		err := f.Run(context.Background(), tc.args, tc.dash, Streams{Stdout: io.Discard, Stderr: io.Discard}, nil)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != ExitFailed || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: %v; want status 125 and %q", tc.flags, tc.args, err, tc.want)
		}
	}
}

func indexOf(args []string, names ...string) int {
	for i, a := range args {
		for _, n := range names {
			if a == n {
				return i
			}
		}
	}
	return -1
}

// TestSettings: the TTL goes up to whole seconds; --timeout unset is no
// bound, 0 one try.
func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		flags        []string
		ttl, timeout time.Duration
	}{
		{nil, DefaultTTL, -1},
		{[]string{"--ttl", "1500ms"}, 2 * time.Second, -1},
		{[]string{"--timeout", "0"}, DefaultTTL, 0},
		{[]string{"--timeout", "90s", "--ttl", "10s"}, 10 * time.Second, 90 * time.Second},
	} {
		fs := pflag.NewFlagSet("elect", pflag.ContinueOnError)
		f := AddElectFlags(fs)
		if err := fs.Parse(tc.flags); err != nil {
			t.Fatal(err)
		}
		ttl, timeout, err := f.settings()
		if err != nil || ttl != tc.ttl || timeout != tc.timeout {
			t.Errorf("%q: ttl %v, timeout %v, %v; want %v, %v", tc.flags, ttl, timeout, err, tc.ttl, tc.timeout)
		}
	}
	fs := pflag.NewFlagSet("elect", pflag.ContinueOnError)
	if AddElectFlags(fs); fs.Lookup("request-timeout") == nil || fs.Lookup("endpoints") == nil {
		t.Error("the connection flags are missing, or --timeout was not renamed --request-timeout")
	}
}
