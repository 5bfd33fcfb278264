package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A Browser is a headless Debian Chromium driven with chromedp that
// presents a client certificate to one origin: the certificate and the
// cluster CA are in an NSS database under the browser's own HOME, and
// Chromium's AutoSelectCertificateForUrls policy picks it without a
// dialog (reference/browser-mtls.md). Console errors and uncaught
// exceptions are recorded.
type Browser struct {
	Ctx context.Context

	mu     sync.Mutex
	errs   []string // console.error calls, uncaught exceptions
	netErr []string // the browser's own error log entries (failed loads)
}

// policyDir is where Debian's Chromium reads managed policies.
const policyDir = "/etc/chromium/policies/managed"

// NeedBrowser returns the chromium binary after checking the tools a
// browser test needs (chromium, certutil and pk12util from libnss3-tools,
// a writable policy directory). When one is missing the test is skipped,
// or failed if RequireExternalEnv is "1".
func NeedBrowser(t testing.TB) string {
	t.Helper()
	var missing []string
	var bin string
	for _, name := range []string{"chromium", "certutil", "pk12util"} {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
		} else if name == "chromium" {
			bin = p
		}
	}
	if len(missing) == 0 {
		if err := os.MkdirAll(policyDir, 0o755); err != nil {
			missing = append(missing, "a writable "+policyDir+" ("+err.Error()+")")
		}
	}
	if len(missing) == 0 {
		return bin
	}
	msg := fmt.Sprintf("this test needs %s (Debian: apt-get install chromium libnss3-tools, as root)", strings.Join(missing, ", "))
	if os.Getenv(RequireExternalEnv) == "1" {
		t.Fatalf("%s; %s=1 makes that a failure", msg, RequireExternalEnv)
	}
	t.Skip(msg)
	return ""
}

// AllowClientCert installs, for the test's lifetime, the policy that makes
// every Chromium pick a client certificate for origin without asking (the
// file has a test-unique name and is removed at cleanup).
func AllowClientCert(t testing.TB, origin string) {
	t.Helper()
	pattern, _ := json.Marshal(map[string]any{"pattern": origin, "filter": map[string]any{}})
	doc, _ := json.Marshal(map[string]any{"AutoSelectCertificateForUrls": []string{string(pattern)}})
	f, err := os.CreateTemp(policyDir, "cairn-test-*.json")
	if err != nil {
		t.Fatalf("chromium policy: %v", err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.Write(doc); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// NewBrowser starts a Chromium whose NSS database trusts caFile and, when
// p12 is not "", holds the client certificate of that PKCS#12 file (empty
// password). Width and height are the window's. It is stopped at cleanup.
func NewBrowser(t testing.TB, bin, caFile, p12 string, width, height int) *Browser {
	t.Helper()
	home := t.TempDir()
	db := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("certutil", "-N", "-d", db, "--empty-password")
	if p12 != "" {
		run("pk12util", "-i", p12, "-d", db, "-W", "")
	}
	run("certutil", "-A", "-d", db, "-n", "cairn-ca", "-t", "C,,", "-i", caFile)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.WindowSize(width, height),
		chromedp.Env("HOME=" + home),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx}
	// Subscribe before the first page loads; the goroutine ends with ctx.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
		<-done
	})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.record(m)
		}
	}()
	return b
}

// record keeps the console errors, exceptions and failed loads.
func (b *Browser) record(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case m.IsException():
		b.errs = append(b.errs, m.String()+" at "+m.URL)
	case m.Type == chromedp.ConsoleError && m.Source == "":
		b.errs = append(b.errs, m.String()+" at "+m.URL)
	case m.Type == chromedp.ConsoleError:
		b.netErr = append(b.netErr, m.Source+": "+m.Text+" "+m.URL)
	}
}

// Errors returns the console errors and exceptions so far and, with
// network set, the browser's failed loads too.
func (b *Browser) Errors(network bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string(nil), b.errs...)
	if network {
		out = append(out, b.netErr...)
	}
	return out
}

// Run runs actions with a timeout.
func (b *Browser) Run(t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression.
func Eval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// WaitJS polls until the JavaScript expression expr is true.
func (b *Browser) WaitJS(t testing.TB, timeout time.Duration, what, expr string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			page, _ := Eval[string](b, `location.href + " flash: " + ((document.querySelector("#flash")||{}).textContent||"")`)
			t.Logf("page when %q failed: %s; console: %v", what, page, b.Errors(true))
		}
	}()
	Poll(t, timeout, what, func() error {
		ok, err := Eval[bool](b, expr)
		if err != nil {
			return err
		}
		if !ok {
			return errNotYet
		}
		return nil
	})
}

// Text is the textContent of the first element matching the CSS selector
// sel, "" when there is none.
func (b *Browser) Text(t testing.TB, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	s, err := Eval[string](b, fmt.Sprintf(`(document.querySelector(%s)||{}).textContent||""`, q))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// Screenshot writes a PNG of the viewport to dir/name when dir is not "".
func (b *Browser) Screenshot(t testing.TB, dir, name string) {
	t.Helper()
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Phone makes the viewport a phone's (390x844 CSS pixels, touch).
func (b *Browser) Phone(t testing.TB) {
	t.Helper()
	b.Run(t, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch))
}
