package e2e

// The dashboard (/mod/dashboard/) in a real headless Chromium presenting
// a client certificate, against the built binary: it loads without
// console errors, shows the members and the leader, a service registered
// over the API appears with its DNS names and disappears when its TTL
// runs out, a key edited in the browser (compare-and-swap) is what a
// client then reads, a stale edit shows error 101, a forbidden write
// shows error 110, and without a client certificate the page does not
// load at all.
//
// With CAIRN_DASHBOARD_SCREENSHOTS=DIR the test writes one screenshot
// per view (and a phone-sized one) to DIR, e.g. docs/img.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/discovery"
	"github.com/chromedp/chromedp"
)

// screenshotsEnv names the directory the screenshots go to.
const screenshotsEnv = "CAIRN_DASHBOARD_SCREENSHOTS"

// issueP12 issues a client certificate for name with `cairn cert issue
// --p12` (as docs/dashboard.md does) and returns the .p12 file.
func issueP12(t *testing.T, caDir, name string) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(needCairn(t), "cert", "issue", "--client", name, "--ca-dir", caDir, "--out", out, "--p12")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cairn cert issue --client %s --p12: %v\n%s", name, err, b)
	}
	return filepath.Join(out, name+".p12")
}

// mustStatus sends a request with the root client and checks its status.
func mustStatus(t *testing.T, s *Server, method, path, form string, want int) []byte {
	t.Helper()
	resp, body := s.mustDo(t, method, path, "", form)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, body)
	}
	return body
}

// keyValue reads key as a client (curl's view) and returns its value.
func keyValue(t *testing.T, s *Server, key string) (string, int) {
	t.Helper()
	resp, body := s.Get(t, "/v2/keys"+key, "")
	var ev struct {
		Node struct {
			Value         string `json:"value"`
			ModifiedIndex int    `json:"modifiedIndex"`
		} `json:"node"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("GET %s: %v: %s", key, err, body)
	}
	return ev.Node.Value, ev.Node.ModifiedIndex
}

func TestDashboard(t *testing.T) {
	bin := NeedBrowser(t)
	shots := os.Getenv(screenshotsEnv)
	s := startCairn(t)
	AllowClientCert(t, s.URL)
	page := s.URL + "/mod/dashboard/"

	// Some state for every view to show.
	cairnDir := "/skydns/internal/cairn"
	mustStatus(t, s, "PUT", "/v2/keys"+cairnDir+"/db/pg-1", "value="+url.QueryEscape(`{"host":"10.0.1.5","port":5432,"priority":10,"weight":100}`), http.StatusCreated)
	mustStatus(t, s, "PUT", "/v2/keys"+cairnDir+"/web/web-2", "ttl=600&value="+url.QueryEscape(`{"host":"10.0.0.6","port":8080,"priority":10,"weight":50}`), http.StatusCreated)
	mustStatus(t, s, "PUT", "/v2/keys/config/app/mode", "value=staging", http.StatusCreated)
	mustStatus(t, s, "PUT", "/v2/keys/config/app/replicas", "value=3", http.StatusCreated)
	mustStatus(t, s, "POST", "/v2/keys/_mod/lock/deploy", "ttl=600&value=alice", http.StatusCreated)
	mustStatus(t, s, "POST", "/v2/keys/_mod/lock/deploy", "ttl=600&value=bob", http.StatusCreated)
	mustStatus(t, s, "POST", "/v2/keys/_mod/leader/scheduler", "ttl=600&value=sched-a", http.StatusCreated)

	root := NewBrowser(t, bin, testPKI.CAFile, issueP12(t, testPKI.Dir, "root"), 1280, 800)

	t.Run("loads without console errors", func(t *testing.T) {
		root.Run(t, "open "+page, chromedp.Navigate(page))
		root.WaitJS(t, 20*time.Second, "the page to start", `document.body.dataset.ready === "true"`)
		root.WaitJS(t, 10*time.Second, "the members table", `document.querySelectorAll("#members tbody tr").length === 1`)
		if errs := root.Errors(true); len(errs) > 0 {
			t.Fatalf("the dashboard logged errors while loading:\n%s", strings.Join(errs, "\n"))
		}
		if title, err := Eval[string](root, `document.title`); err != nil || title != "Cairn dashboard" {
			t.Fatalf("title %q, %v", title, err)
		}
	})

	t.Run("cluster view shows the members and the leader", func(t *testing.T) {
		root.WaitJS(t, 10*time.Second, "the member's health", `document.querySelector("#members tbody tr td:nth-child(3)").textContent.includes("healthy")`)
		if got := root.Text(t, "#members tbody tr td:nth-child(2)"); !strings.Contains(got, "leader") {
			t.Errorf("role column %q, want leader", got)
		}
		if got := root.Text(t, "#cluster-cards"); !strings.Contains(got, "Leadern1") || !strings.Contains(got, "Raft term") {
			t.Errorf("cluster cards %q, want the leader n1 and the raft term", got)
		}
		if got := root.Text(t, "#members tbody tr td:nth-child(4)"); !strings.Contains(got, "in ") {
			t.Errorf("certificate expiry %q, want a time to expiry", got)
		}
	})

	t.Run("a registered service appears with its DNS names and disappears after its TTL", func(t *testing.T) {
		root.Run(t, "services view", chromedp.Navigate(page+"#services"))
		root.WaitJS(t, 20*time.Second, "the services view", `document.body.dataset.ready === "true" && !!document.querySelector('tr[data-key="/skydns/internal/cairn/db/pg-1"]')`)
		key := cairnDir + "/web/web-1"
		mustStatus(t, s, "PUT", "/v2/keys"+key, "ttl=4&value="+url.QueryEscape(`{"host":"10.0.0.5","port":8080,"priority":10,"weight":50}`), http.StatusCreated)
		row := `document.querySelector('tr[data-key="` + key + `"]')`
		root.WaitJS(t, 10*time.Second, "the new instance", "!!"+row)
		if got := root.Text(t, `tr[data-key="`+key+`"] .dnsname`); got != "web-1.web.cairn.internal." {
			t.Errorf("instance DNS name %q, want web-1.web.cairn.internal.", got)
		}
		if got := root.Text(t, `[data-service="web"] .dns`); !strings.Contains(got, "web.cairn.internal.") || !strings.Contains(got, "_web._tcp.cairn.internal.") {
			t.Errorf("service names %q, want web.cairn.internal. and _web._tcp.cairn.internal.", got)
		}
		if got := root.Text(t, `tr[data-key="`+key+`"] .ttl`); !strings.HasSuffix(got, "s") {
			t.Errorf("TTL cell %q, want a countdown in seconds", got)
		}
		root.WaitJS(t, 30*time.Second, "the instance to age (its class)", row+` === null || /age-(mid|old|gone)/.test(`+row+`.className)`)
		root.Screenshot(t, shots, "dashboard-services.png")
		root.WaitJS(t, 30*time.Second, "the instance to disappear when its key expires", row+" === null")
		if n := len(root.Errors(false)); n > 0 {
			t.Errorf("errors: %v", root.Errors(false))
		}
	})

	t.Run("a key edited in the browser is what a client reads", func(t *testing.T) {
		root.Run(t, "keys view", chromedp.Navigate(page+"#keys"))
		root.WaitJS(t, 20*time.Second, "the key list", `document.body.dataset.ready === "true" && !!document.querySelector('tr[data-key="/config"]')`)
		root.Run(t, "open /config/app", chromedp.Click(chromedp.CSS(`tr[data-key="/config"]`)))
		root.WaitJS(t, 10*time.Second, "the directory /config/app", `!!document.querySelector('tr[data-key="/config/app"]')`)
		root.Run(t, "open /config/app", chromedp.Click(chromedp.CSS(`tr[data-key="/config/app"]`)))
		root.WaitJS(t, 10*time.Second, "the key mode", `!!document.querySelector('tr[data-key="/config/app/mode"]')`)
		root.Run(t, "select mode", chromedp.Click(chromedp.CSS(`tr[data-key="/config/app/mode"]`)))
		root.WaitJS(t, 10*time.Second, "the key's detail", `!!document.querySelector("#key-value") && document.querySelector("#key-value").value === "staging"`)
		_, before := keyValue(t, s, "/config/app/mode")
		root.Run(t, "edit and save", chromedp.SetValue(chromedp.CSS("#key-value"), "production"), chromedp.Click(chromedp.CSS("#key-save")))
		Poll(t, 10*time.Second, "the client to read the value saved in the browser", func() error {
			if v, _ := keyValue(t, s, "/config/app/mode"); v != "production" {
				return errNotYet
			}
			return nil
		})
		root.WaitJS(t, 10*time.Second, "the new modified index shown", `document.querySelector("#key-mod").textContent !== "`+itoa(before)+`"`)
		root.Screenshot(t, shots, "dashboard-keys.png")

		// A stale edit: the key changes behind the form being edited.
		root.Run(t, "start editing", chromedp.Focus(chromedp.CSS("#key-value")))
		mustStatus(t, s, "PUT", "/v2/keys/config/app/mode", "value=changed-elsewhere", http.StatusOK)
		root.WaitJS(t, 10*time.Second, "the warning that the key changed", `document.querySelector("#key-detail").textContent.includes("Changed elsewhere")`)
		root.Run(t, "save the stale edit", chromedp.SetValue(chromedp.CSS("#key-value"), "stale"), chromedp.Click(chromedp.CSS("#key-save")))
		root.WaitJS(t, 10*time.Second, "error 101 shown", `document.querySelector("#key-error").textContent.includes("etcd error 101")`)
		if v, _ := keyValue(t, s, "/config/app/mode"); v != "changed-elsewhere" {
			t.Errorf("after a failed compare-and-swap the key is %q, want changed-elsewhere", v)
		}

		// Delete, after the confirmation.
		root.Run(t, "reopen replicas", chromedp.Click(chromedp.CSS(`tr[data-key="/config/app/replicas"]`)))
		root.WaitJS(t, 10*time.Second, "the replicas detail", `!!document.querySelector("#key-value") && document.querySelector("#key-value").value === "3"`)
		root.Run(t, "delete", chromedp.Click(chromedp.CSS("#key-delete")))
		root.WaitJS(t, 10*time.Second, "the confirmation", `document.querySelector("#confirm").open`)
		root.Run(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
		Poll(t, 10*time.Second, "the key deleted from the browser to be gone", func() error {
			if resp, _ := s.Get(t, "/v2/keys/config/app/replicas", ""); resp.StatusCode != http.StatusNotFound {
				return errNotYet
			}
			return nil
		})
		root.WaitJS(t, 10*time.Second, "the row to go", `!document.querySelector('tr[data-key="/config/app/replicas"]')`)
	})

	t.Run("a key created in the browser is what a client reads", func(t *testing.T) {
		root.Run(t, "new key", chromedp.Click(chromedp.CSS("#key-new")))
		root.WaitJS(t, 10*time.Second, "the form", `!!document.querySelector("#new-form")`)
		root.Run(t, "fill in and create", chromedp.SetValue(chromedp.CSS("#new-name"), "created/by-browser"),
			chromedp.SetValue(chromedp.CSS("#new-value"), "hello from chromium"), chromedp.Click(chromedp.CSS("#new-save")))
		Poll(t, 10*time.Second, "the client to read the key created in the browser", func() error {
			if v, _ := keyValue(t, s, "/config/app/created/by-browser"); v != "hello from chromium" {
				return errNotYet
			}
			return nil
		})
		// Creating it again is refused: prevExist=false, etcd error 105.
		root.Run(t, "new key again", chromedp.Click(chromedp.CSS("#key-new")))
		root.WaitJS(t, 10*time.Second, "the form", `!!document.querySelector("#new-form")`)
		root.Run(t, "create again", chromedp.SetValue(chromedp.CSS("#new-name"), "created/by-browser"), chromedp.Click(chromedp.CSS("#new-save")))
		root.WaitJS(t, 10*time.Second, "error 105 shown", `document.querySelector("#new-error").textContent.includes("etcd error 105")`)
	})

	t.Run("DNS names are package discovery's", func(t *testing.T) {
		dcfg := discovery.Config{}
		for _, key := range []string{
			"/skydns/internal/cairn/web/web-1",
			"/skydns/internal/cairn/prod/api/API-7",
			"/skydns/internal/cairn/odd/a.b c",
			"/skydns/internal/cairn/odd/caf\u00e9",
		} {
			key, _ = strconv.Unquote(`"` + key + `"`)
			wantName, _ := dcfg.Name(key)
			q, _ := json.Marshal(key)
			got, err := chromedp.Run(root.Ctx, chromedp.Evaluate[map[string]string](
				`import("/mod/dashboard/static/names.js").then(m => m.instanceNames(`+string(q)+`, "/skydns/internal/cairn", "cairn.internal."))`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatalf("names.js for %q: %v", key, err)
			}
			if got["name"] != wantName {
				t.Errorf("name of %q: page %q, discovery %q", key, got["name"], wantName)
			}
			svcName, srvName, _ := dcfg.ServiceNames(got["service"])
			if got["serviceName"] != svcName || got["srvName"] != srvName {
				t.Errorf("service names of %q: page %q %q, discovery %q %q", key, got["serviceName"], got["srvName"], svcName, srvName)
			}
		}
	})

	t.Run("locks, elections and the event feed", func(t *testing.T) {
		root.Run(t, "locks view", chromedp.Navigate(page+"#locks"))
		root.WaitJS(t, 20*time.Second, "the lock queue", `document.body.dataset.ready === "true" && !!document.querySelector('[data-queue="deploy"]')`)
		if got := root.Text(t, `[data-queue="deploy"] li.holder`); !strings.Contains(got, "holder") || !strings.Contains(got, "alice") {
			t.Errorf("lock holder %q, want alice", got)
		}
		mustStatus(t, s, "POST", "/v2/keys/_mod/lock/deploy", "ttl=600&value=carol", http.StatusCreated)
		root.WaitJS(t, 10*time.Second, "the new waiter", `document.querySelector('[data-queue="deploy"]').textContent.includes("carol")`)
		if got := root.Text(t, `#leader-list [data-queue="scheduler"] li.holder`); !strings.Contains(got, "sched-a") {
			t.Errorf("election leader %q, want sched-a", got)
		}
		// Through the lock and leader modules themselves.
		token := strings.TrimSpace(string(mustStatus(t, s, "POST", "/mod/v2/lock/build?ttl=600&value=ci-1", "", http.StatusOK)))
		mustStatus(t, s, "PUT", "/mod/v2/leader/web/primary?name=web-2&ttl=600", "", http.StatusOK)
		root.WaitJS(t, 10*time.Second, "the lock taken through /mod/v2/lock", `!!document.querySelector('#lock-list [data-queue="build"] li.holder')`)
		if got := root.Text(t, `#lock-list [data-queue="build"] li.holder`); !strings.Contains(got, "ci-1") || !strings.Contains(got, "index "+token) {
			t.Errorf("lock build: %q, want holder ci-1 with fencing token %s", got, token)
		}
		root.WaitJS(t, 10*time.Second, "the leader elected through /mod/v2/leader", `!!document.querySelector('#leader-list [data-queue="web/primary"] li.holder')`)
		if got := root.Text(t, `#leader-list [data-queue="web/primary"] li.holder`); !strings.Contains(got, "web-2") {
			t.Errorf("election web/primary: %q, want leader web-2", got)
		}
		dismissBanner(t, root)
		root.Screenshot(t, shots, "dashboard-locks.png")

		root.Run(t, "events view", chromedp.Navigate(page+"#events"))
		root.WaitJS(t, 20*time.Second, "the feed", `document.body.dataset.ready === "true" && document.querySelector("#ev-status").textContent !== ""`)
		mustStatus(t, s, "PUT", "/v2/keys/feed/one", "value=hello", http.StatusCreated)
		root.WaitJS(t, 10*time.Second, "the event in the feed", `document.querySelector("#ev-list tbody").textContent.includes("/feed/one")`)
		if got := root.Text(t, "#whoami"); !strings.Contains(got, "client/root") {
			t.Errorf("identity %q, want client/root", got)
		}
		dismissBanner(t, root)
		root.Screenshot(t, shots, "dashboard-events.png")

		root.Phone(t)
		root.Run(t, "services on a phone", chromedp.Navigate(page+"#services"))
		root.WaitJS(t, 20*time.Second, "the services view", `document.body.dataset.ready === "true" && !!document.querySelector('tr[data-key="/skydns/internal/cairn/db/pg-1"]')`)
		if wide, err := Eval[bool](root, `document.documentElement.scrollWidth > window.innerWidth + 1`); err != nil || wide {
			t.Errorf("the services view scrolls sideways on a phone (%v)", err)
		}
		dismissBanner(t, root)
		root.Screenshot(t, shots, "dashboard-phone.png")
		if errs := root.Errors(false); len(errs) > 0 {
			t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
		}
	})

	t.Run("a forbidden write shows error 110", func(t *testing.T) {
		// Authorization on: client/root is root, client/viewer may read
		// everything and write only below /skydns/internal/cairn/web.
		mustStatus(t, s, "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`, http.StatusCreated)
		mustStatus(t, s, "PUT", "/v2/auth/roles/viewer", `{"role":"viewer","permissions":{"kv":{"read":["/*"],"write":["/skydns/internal/cairn/web/*"]}}}`, http.StatusCreated)
		mustStatus(t, s, "PUT", "/v2/auth/users/client/viewer", `{"user":"client/viewer","roles":["viewer"]}`, http.StatusCreated)
		mustStatus(t, s, "PUT", "/v2/auth/enable", "", http.StatusOK)
		t.Cleanup(func() { s.mustDo(t, "DELETE", "/v2/auth/enable", "", "") })

		viewer := NewBrowser(t, bin, testPKI.CAFile, issueP12(t, testPKI.Dir, "viewer"), 1280, 800)
		viewer.Run(t, "open the key", chromedp.Navigate(page+"#keys"))
		viewer.WaitJS(t, 20*time.Second, "the page", `document.body.dataset.ready === "true"`)
		viewer.Run(t, "go to the key", chromedp.SetValue(chromedp.CSS("#key-path"), "/config/app/mode"), chromedp.Click(chromedp.CSS("#key-go button")))
		viewer.WaitJS(t, 10*time.Second, "the key's detail", `!!document.querySelector("#key-value") && document.querySelector("#key-value").value === "changed-elsewhere"`)
		viewer.Run(t, "try to save", chromedp.SetValue(chromedp.CSS("#key-value"), "forbidden"), chromedp.Click(chromedp.CSS("#key-save")))
		viewer.WaitJS(t, 10*time.Second, "error 110 shown in the form", `document.querySelector("#key-error").textContent.includes("etcd error 110")`)
		if got := viewer.Text(t, "#flash"); !strings.Contains(got, "110") || !strings.Contains(got, "Insufficient credentials") {
			t.Errorf("banner %q, want etcd error 110 Insufficient credentials", got)
		}
		if v, _ := keyValue(t, s, "/config/app/mode"); v != "changed-elsewhere" {
			t.Errorf("a refused write changed the key to %q", v)
		}
		viewer.Screenshot(t, shots, "dashboard-denied.png")
		viewer.Run(t, "events view", chromedp.Navigate(page+"#events"))
		viewer.WaitJS(t, 10*time.Second, "the identity", `document.querySelector("#whoami").textContent.includes("client/viewer")`)
		if got := viewer.Text(t, "#whoami"); !strings.Contains(got, "viewer") || !strings.Contains(got, "Authorization is on") {
			t.Errorf("identity panel %q, want client/viewer with its role", got)
		}
		if errs := viewer.Errors(false); len(errs) > 0 {
			t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
		}
	})
}

func TestDashboardNeedsClientCertificate(t *testing.T) {
	bin := NeedBrowser(t)
	s := startCairn(t)
	AllowClientCert(t, s.URL)
	// The CA is trusted, but there is no client certificate to present.
	b := NewBrowser(t, bin, testPKI.CAFile, "", 1280, 800)
	navErr := chromedp.Do(b.Ctx, chromedp.Navigate(s.URL+"/mod/dashboard/")) // fails, or shows Chromium's error page
	title, err := Eval[string](b, `document.title`)
	if err != nil {
		t.Fatal(err)
	}
	hasTabs, err := Eval[bool](b, `!!document.querySelector("#tabs")`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("navigation without a client certificate: %v; page title %q", navErr, title)
	if hasTabs || title == "Cairn dashboard" {
		t.Fatalf("without a client certificate the dashboard loaded (title %q)", title)
	}
}

// TestDashboardCluster: on a 3-member cluster of real processes, the page
// of one member shows every member, the leader, and each member's health
// and certificate as that member probes them over mTLS; a stopped member
// turns unhealthy.
func TestDashboardCluster(t *testing.T) {
	bin := NeedBrowser(t)
	shots := os.Getenv(screenshotsEnv)
	p := startProcs(t, 3, clustertest.ProcOptions{})
	const other = 0 // the member whose page is opened
	url := p.Proc(other).ClientURL
	AllowClientCert(t, url)
	b := NewBrowser(t, bin, p.CAFile, issueP12(t, filepath.Dir(p.CAFile), "ops"), 1280, 800)
	b.Run(t, "open the dashboard", chromedp.Navigate(url+"/mod/dashboard/"))
	b.WaitJS(t, 20*time.Second, "three healthy members",
		`document.querySelectorAll("#members tbody tr").length === 3 && [...document.querySelectorAll("#members tbody tr td:nth-child(3)")].every(td => td.textContent.startsWith("healthy"))`)
	row := func(i int) string { return `#members tbody tr[data-member="` + p.Proc(i).Name + `"]` }
	// The page shows the leader the cluster has (an election may happen
	// meanwhile on a loaded machine: compare until both agree).
	leader := -1
	Poll(t, 20*time.Second, "the page to show the cluster's leader as the only leader", func() error {
		l, err := p.FindLeader()
		if err != nil {
			return err
		}
		shown, err := Eval[[]string](b, `[...document.querySelectorAll("#members tbody tr")].filter(tr => tr.children[1].textContent === "leader").map(tr => tr.dataset.member)`)
		if err != nil {
			return err
		}
		if len(shown) != 1 || shown[0] != p.Proc(l).Name {
			return fmt.Errorf("the page shows leaders %v, the cluster's is %s", shown, p.Proc(l).Name)
		}
		if got := b.Text(t, "#cluster-cards"); !strings.Contains(got, "Leader"+p.Proc(l).Name) {
			return fmt.Errorf("cluster cards %q, want leader %s", got, p.Proc(l).Name)
		}
		leader = l
		return nil
	})
	for i := range 3 {
		if i != leader {
			if got := b.Text(t, row(i)+" td:nth-child(2)"); got != "follower" {
				t.Errorf("%s's role %q, want follower", p.Proc(i).Name, got)
			}
		}
		if got := b.Text(t, row(i)+" td:nth-child(4)"); !strings.HasPrefix(got, "in ") {
			t.Errorf("%s's certificate expiry %q", p.Proc(i).Name, got)
		}
	}
	b.Screenshot(t, shots, "dashboard-cluster.png")

	stopped := 1
	if leader == stopped {
		stopped = 2
	}
	if err := p.Stop(stopped); err != nil {
		t.Fatal(err)
	}
	b.WaitJS(t, 30*time.Second, "the stopped member to show as not healthy",
		`!document.querySelector('`+row(stopped)+` td:nth-child(3)').textContent.startsWith("healthy")`)
	t.Logf("%s stopped: %s", p.Proc(stopped).Name, b.Text(t, row(stopped)+" td:nth-child(3)"))
	if errs := b.Errors(true); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// scaleEnv turns on TestDashboardScale, a measurement rather than a check.
const scaleEnv = "CAIRN_DASHBOARD_SCALE"

// TestDashboardScale measures the page on a store of 10,000 keys in one
// directory and 1,000 registered instances: the time until the services
// view lists them all and until the keys view pages the directory, then
// how far the event feed lags behind 5,000 writes made while it is open,
// and the JavaScript time spent applying them. It logs the figures
// (docs/dashboard.md quotes them) and asserts only that the page keeps
// up. Run with CAIRN_DASHBOARD_SCALE=1.
//
// The watch is streamed (stream=true): with one long-poll request per event
// headless Chromium here managed about 60 events a second (each fetch costs
// it 9-18 ms), far behind the writes.
func TestDashboardScale(t *testing.T) {
	if os.Getenv(scaleEnv) != "1" {
		t.Skipf("a measurement of a minute or so; set %s=1 to run it", scaleEnv)
	}
	bin := NeedBrowser(t)
	s := startCairn(t)
	AllowClientCert(t, s.URL)
	bench := func(requests string) time.Duration {
		t.Helper()
		start := time.Now()
		f := testPKI.ClientFiles()
		cmd := exec.Command(needCairn(t), "bench", "put", "--endpoints", s.URL, "--cacert", f.CAFile, "--cert", f.CertFile, "--key", f.KeyFile,
			"--keys", "10000", "--prefix", "/big", "--requests", requests, "--clients", "8")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cairn bench put: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	bench("10000")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 1000; i += 8 {
				rec := fmt.Sprintf(`{"host":"10.1.%d.%d","port":%d,"priority":10,"weight":5}`, i/250, i%250, 8000+i%20)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, body, err := s.Do(ctx, "PUT", fmt.Sprintf("/v2/keys/skydns/internal/cairn/svc%02d/i-%04d", i%20, i), "", "ttl=3600&value="+url.QueryEscape(rec))
				cancel()
				if err == nil && resp.StatusCode != http.StatusCreated {
					err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("register: %v", err)
	}

	b := NewBrowser(t, bin, testPKI.CAFile, issueP12(t, testPKI.Dir, "scale"), 1280, 800)
	page := s.URL + "/mod/dashboard/"
	start := time.Now()
	b.Run(t, "open the services view", chromedp.Navigate(page+"#services"))
	b.WaitJS(t, 60*time.Second, "1000 instances", `document.querySelector("#svc-summary").textContent.includes("1000 instances")`)
	t.Logf("services view listing 1,000 instances %v after navigation", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	b.Run(t, "open /big", chromedp.Navigate(page+"#keys"))
	b.WaitJS(t, 30*time.Second, "the page", `document.body.dataset.ready === "true"`)
	b.Run(t, "open /big", chromedp.SetValue(chromedp.CSS("#key-path"), "/big"), chromedp.Click(chromedp.CSS("#key-go button")))
	b.WaitJS(t, 30*time.Second, "10000 keys", `document.querySelector("#key-pager").textContent.includes("of 10000")`)
	t.Logf("keys view paging a 10,000-key directory %v after navigation", time.Since(start).Round(time.Millisecond))

	b.Run(t, "the events view", chromedp.Navigate(page+"#events"))
	b.WaitJS(t, 30*time.Second, "the feed", `document.body.dataset.ready === "true" && document.querySelector("#ev-status").textContent === "live"`)
	resp, _ := s.Get(t, "/v2/keys/", "")
	first, _ := strconv.Atoi(resp.Header.Get("X-Etcd-Index"))
	start = time.Now()
	took := bench("5000")
	resp, _ = s.Get(t, "/v2/keys/", "")
	last := resp.Header.Get("X-Etcd-Index")
	b.WaitJS(t, 60*time.Second, "the feed to show the last write", `document.querySelector("#ev-list tbody tr").dataset.index === "`+last+`"`)
	caught := time.Since(start)
	applied, err := Eval[struct {
		Events  int     `json:"events"`
		ApplyMS float64 `json:"applyMs"`
	}](b, `window.cairnDashboard`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("5,000 writes (index %d to %s) in %v; the feed showed the last %v after the first write; applying the %d events the page got took %.0f ms of JavaScript",
		first+1, last, took.Round(time.Millisecond), caught.Round(time.Millisecond), applied.Events, applied.ApplyMS)
	if errs := b.Errors(false); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// dismissBanner hides the page's message banner (as a click on it does),
// for screenshots of the views alone.
func dismissBanner(t *testing.T, b *Browser) {
	t.Helper()
	if _, err := Eval[bool](b, `(document.querySelector("#flash").hidden = true)`); err != nil {
		t.Fatal(err)
	}
}
