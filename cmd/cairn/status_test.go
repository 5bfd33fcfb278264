package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// The gathering of the status (members, health, leader, certificates) is
// tested in cluster/v2client; these test the command: its flags, output
// and exit status.

func runStatus(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCairn(t, nil, append([]string{"status"}, args...)...)
}

func TestStatus(t *testing.T) {
	srv := servertest.Start(t, nil)
	client, err := tlsconf.LoadMaterial(srv.ClientFiles)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := client.Certificate().Leaf.NotAfter.UTC()
	days := int(time.Until(notAfter).Hours() / 24)
	expires := fmt.Sprintf("%s (%d days)", notAfter.Format("2006-01-02"), days)
	flags := []string{"--data-dir", srv.Config().DataDir, "--endpoints", srv.URL}
	id := fmt.Sprintf("%x", srv.Node().ID())

	t.Run("table", func(t *testing.T) {
		// A fresh development member: healthy, and no warning about its
		// 7-day managed certificate.
		stdout, stderr, err := runStatus(t, flags...)
		if err != nil || stderr != "" {
			t.Fatalf("%v, stderr %q\n%s", err, stderr, stdout)
		}
		lines := strings.Split(stdout, "\n")
		header := regexp.MustCompile(`^NAME +ID +CLIENT URL +LEADER +HEALTH +RAFT TERM +RAFT INDEX +ETCD INDEX +CERTIFICATE EXPIRES$`)
		if !header.MatchString(lines[0]) {
			t.Errorf("header %q", lines[0])
		}
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^test +%s +%s +\* +healthy +[1-9]\d* +[1-9]\d* +\d+ +\d{4}-\d\d-\d\d \(\d+ days\)$`,
			id, regexp.QuoteMeta(srv.URL)))
		if !row.MatchString(stdout) {
			t.Errorf("no row like %s in\n%s", row, stdout)
		}
		for _, want := range []string{
			fmt.Sprintf("\nleader:             test (%s)\n", id),
			fmt.Sprintf("\nclient certificate: %s (spiffe://cairn.internal/client/root) expires %s\n", srv.ClientFiles.CertFile, expires),
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("no %q in\n%s", want, stdout)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		stdout, _, err := runStatus(t, append(flags, "-o", "json")...)
		if err != nil {
			t.Fatal(err)
		}
		var r v2client.Status
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if !r.Healthy || len(r.Problems) != 0 || len(r.Warnings) != 0 || len(r.Members) != 1 || r.Leader != id || r.LeaderName != "test" {
			t.Errorf("report %+v", r)
		}
		if m := r.Members[0]; !m.Reachable || !m.Healthy || !m.IsLeader || m.Certificate == nil ||
			m.Certificate.Subject != "spiffe://cairn.internal/node/test" {
			t.Errorf("member %+v", m)
		}
		if c := r.ClientCertificate; c.File != srv.ClientFiles.CertFile || !c.NotAfter.Equal(notAfter) || c.DaysLeft != days || c.Expired {
			t.Errorf("client certificate %+v", c)
		}
		for _, key := range []string{`"clientCertificate": {`, `"daysLeft": `, `"raftTerm": `, `"problems": []`, `"warnings": []`} {
			if !strings.Contains(stdout, key) {
				t.Errorf("no %s in\n%s", key, stdout)
			}
		}
	})

	t.Run("certificate warnings", func(t *testing.T) {
		stdout, stderr, err := runStatus(t, append(flags, "--cert-warning", "9000h")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if got := strings.Count(stderr, "warning: the certificate of member test ("+srv.URL+", spiffe://cairn.internal/node/test) expires "); got != 1 {
			t.Errorf("%d member warnings:\n%s", got, stderr)
		}
		want := fmt.Sprintf("warning: the client certificate %s (spiffe://cairn.internal/client/root) expires %s\n", srv.ClientFiles.CertFile, expires)
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q in\n%s", want, stderr)
		}
	})

	t.Run("bad output", func(t *testing.T) {
		_, _, err := runStatus(t, append(flags, "-o", "yaml")...)
		if err == nil || err.Error() != `unsupported output format "yaml": use table or json` {
			t.Errorf("error %v", err)
		}
	})

	t.Run("no member answers", func(t *testing.T) {
		_, _, err := runStatus(t, "--data-dir", srv.Config().DataDir, "--endpoints", refusedEndpoint(t))
		if err == nil || !strings.HasPrefix(err.Error(), "list the members: no endpoint answered") ||
			!strings.HasSuffix(err.Error(), "check that a member runs there, or pass --endpoints or set CAIRN_ENDPOINTS") {
			t.Errorf("error %v", err)
		}
	})

	// Last: this breaks the cluster.
	t.Run("unhealthy cluster", func(t *testing.T) {
		_, err := srv.Node().AddMember(t.Context(), []string{refusedEndpoint(t)})
		if err != nil {
			t.Fatal(err)
		}
		stdout, _, err := runStatus(t, append(flags, "--timeout", "1s")...)
		if err == nil || !strings.HasPrefix(err.Error(), "the cluster is not healthy: member ") ||
			!strings.Contains(err.Error(), "is unreachable: no client URL: the member has not started") {
			t.Errorf("error %v", err)
		}
		if !regexp.MustCompile(`(?m)^\(unstarted\) +[0-9a-f]+ +- +unreachable +- +- +- +-$`).MatchString(stdout) ||
			!strings.Contains(stdout, "\nproblem:            member ") {
			t.Errorf("no unstarted row or problem line:\n%s", stdout)
		}
	})
}
