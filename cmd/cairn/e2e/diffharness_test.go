package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// The differential harness sends raw HTTP on purpose: it compares bytes,
// statuses and headers with etcd's, which a client would decode away.
//
// The differential harness sends the same request scripts to a reference
// server (etcd) and a server under test and compares what comes back after
// normalization. Index numbers are made relative to the store index seen
// at the start of each script, so two servers whose histories differ
// before the script still compare equal if the script moves both the same
// way.

// step is one request of a script.
type step struct {
	method string
	// path is appended to /v2/keys/<script prefix>; a path starting with
	// "=" is absolute: /v2/keys followed by the rest.
	path string
	// query and form (a urlencoded body) may hold {i+N}, replaced by the
	// store index base+N, and {k+N}, the same as a 20-digit in-order name.
	query, form string
	want        int // expected HTTP status on every server; 0: not checked
	code        int // expected errorCode in the body; 0: not checked

	bg    string // start in the background under this name; compared at its join
	join  string // wait for background request join and compare its response
	until int    // resend until the status is until (at most pollTimeout), compare the last
	bulk  int    // send bulk times, 8 at once; compare only the status counts
	fix   *fix   // cairn deliberately answers otherwise than etcd; see fix
}

// fix replaces the comparison of one step for cairn: etcd 3.4's answer is
// a bug that Cairn fixes or a deviation it documents (docs/etcd-differences),
// so cairn's normalized answer must be want/body instead, and etcd's is only
// logged. Against two etcds the step is compared as usual.
type fix struct {
	note string
	want int
	body string // normalized body, e.g. {"action":"get","node":{...,"modifiedIndex":i+3,...}}
	head string // when not empty, a line the normalized headers must hold
}

const (
	pollTimeout  = 15 * time.Second // expiry polls and background joins
	earlyTimeout = 3 * time.Second  // how long a background watch may take to send headers
	reqTimeout   = 10 * time.Second // any foreground request
)

func req(method, path, query, form string, want int) step {
	return step{method: method, path: path, query: query, form: form, want: want}
}
func get(path, query string, want int) step { return req(http.MethodGet, path, query, "", want) }
func put(path, query, form string, want int) step {
	return req(http.MethodPut, path, query, form, want)
}
func post(path, query, form string, want int) step {
	return req(http.MethodPost, path, query, form, want)
}
func del(path, query string, want int) step  { return req(http.MethodDelete, path, query, "", want) }
func head(path, query string, want int) step { return req(http.MethodHead, path, query, "", want) }

// joined compares the background request name.
func joined(name string, want int) step { return step{join: name, want: want} }

func (s step) ecode(c int) step         { s.code = c; return s }
func (s step) background(n string) step { s.bg = n; s.want = 0; return s }
func (s step) poll(until int) step      { s.until = until; return s }
func (s step) times(n int) step         { s.bulk = n; return s }
func (s step) cairnFix(note string, want int, body string) step {
	s.fix = &fix{note: note, want: want, body: body}
	return s
}

// withHead adds a header line that the fix requires.
func (s step) withHead(line string) step {
	s.fix.head = line
	return s
}

// script is a named list of steps run under the key prefix "/<name>".
// Before its steps, a GET of the prefix (which must not exist) reads the
// base store index; that GET is compared as step 0.
type script struct {
	name  string
	steps []step
}

// response is what came back for one step.
type response struct {
	status int
	header http.Header
	body   []byte
	err    error
	// early is set for background requests whose headers arrived before
	// the steps after them ran (etcd flushes watch headers at once).
	early bool
	// bulk is the status histogram of a bulk step.
	bulk string
}

// outcome is one step's request and normalized response on one server.
type outcome struct {
	desc string
	resp response
	norm norm
}

var placeholderRE = regexp.MustCompile(`\{([ik])([+-]\d+)\}`)

// expand replaces the index placeholders of s.
func expand(s string, base uint64) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholderRE.FindStringSubmatch(m)
		d, _ := strconv.ParseInt(sub[2], 10, 64)
		v := uint64(int64(base) + d)
		if sub[1] == "k" {
			return fmt.Sprintf("%020d", v)
		}
		return strconv.FormatUint(v, 10)
	})
}

// keysPath is the URL path of a step's key.
func keysPath(prefix, p string) string {
	if rest, ok := strings.CutPrefix(p, "="); ok {
		return "/v2/keys" + rest
	}
	return "/v2/keys" + prefix + p
}

// bgReq is a background request in flight.
type bgReq struct {
	headers chan struct{} // closed once headers (or an error) arrived
	done    chan struct{} // closed once the body is read
	cancel  context.CancelFunc
	desc    string
	resp    response
}

// runScript runs sc against s and returns one outcome per step, step 0
// being the base GET. It never fails the test itself: transport errors end
// up in the outcomes.
func runScript(s *Server, sc script) []outcome {
	prefix := "/" + sc.name
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	resp, body, err := s.Do(ctx, http.MethodGet, "/v2/keys"+prefix, "", "")
	cancel()
	first := outcome{desc: "GET " + prefix + " (base index)"}
	if err != nil {
		first.resp = response{err: err}
		return []outcome{first}
	}
	first.resp = response{status: resp.StatusCode, header: resp.Header, body: body}
	base, perr := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if perr != nil || resp.StatusCode != http.StatusNotFound {
		first.resp.err = fmt.Errorf("base GET: want 404 with X-Etcd-Index, got %d %q (%v)", resp.StatusCode, resp.Header.Get("X-Etcd-Index"), perr)
		return []outcome{first}
	}
	first.norm = normalize(base, first.resp)
	outs := []outcome{first}

	bgs := map[string]*bgReq{}
	defer func() {
		for _, b := range bgs {
			b.cancel()
		}
	}()
	for _, st := range sc.steps {
		var o outcome
		switch {
		case st.join != "":
			b := bgs[st.join]
			o.desc = "join " + b.desc
			select {
			case <-b.done:
				o.resp = b.resp
			case <-time.After(pollTimeout):
				b.cancel()
				<-b.done
				o.resp = b.resp
				o.resp.err = fmt.Errorf("background request %s did not complete within %v (%v)", st.join, pollTimeout, b.resp.err)
			}
			delete(bgs, st.join)
		default:
			path := keysPath(prefix, expand(st.path, base))
			query, form := expand(st.query, base), expand(st.form, base)
			o.desc = st.method + " " + path
			if query != "" {
				o.desc += "?" + query
			}
			if form != "" {
				o.desc += " body:" + form
			}
			switch {
			case st.bg != "":
				o.desc = "bg " + st.bg + ": " + o.desc
				b := startBackground(s, st.method, path, query, form)
				b.desc = o.desc
				bgs[st.bg] = b
				select {
				case <-b.headers:
					b.resp.early = true
				case <-time.After(earlyTimeout):
				}
			case st.bulk > 0:
				o.resp = sendBulk(s, st.bulk, st.method, path, query, form)
				o.desc = fmt.Sprintf("%d× %s", st.bulk, o.desc)
			case st.until > 0:
				o.resp = pollStatus(s, st.until, st.method, path, query, form)
				o.desc += fmt.Sprintf(" (until %d)", st.until)
			default:
				o.resp = doOnce(s, st.method, path, query, form)
			}
		}
		o.norm = normalize(base, o.resp)
		outs = append(outs, o)
	}
	return outs
}

func doOnce(s *Server, method, path, query, form string) response {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	resp, body, err := s.Do(ctx, method, path, query, form)
	if err != nil {
		return response{err: err}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func pollStatus(s *Server, until int, method, path, query, form string) response {
	var last response
	err := poll.Check(pollTimeout, func() error {
		last = doOnce(s, method, path, query, form)
		if last.err == nil && last.status == until {
			return nil
		}
		return fmt.Errorf("status %d, %v", last.status, last.err)
	})
	if err != nil {
		last.err = fmt.Errorf("never got %d within %v: %w", until, pollTimeout, err)
	}
	return last
}

func sendBulk(s *Server, n int, method, path, query, form string) response {
	var (
		next   atomic.Int64
		mu     sync.Mutex
		counts = map[string]int{}
		wg     sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				r := doOnce(s, method, path, query, form)
				k := strconv.Itoa(r.status)
				if r.err != nil {
					k = "error"
				}
				mu.Lock()
				counts[k]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	slices.Sort(parts)
	return response{bulk: strings.Join(parts, " ")}
}

func startBackground(s *Server, method, path, query, form string) *bgReq {
	ctx, cancel := context.WithTimeout(context.Background(), 2*pollTimeout)
	b := &bgReq{headers: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(b.done)
		u := s.URL + path
		if query != "" {
			u += "?" + query
		}
		var body io.Reader
		if form != "" {
			body = strings.NewReader(form)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err == nil && form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		var resp *http.Response
		if err == nil {
			resp, err = s.HTTP.Do(req)
		}
		if err != nil {
			b.resp.err = err
			close(b.headers)
			return
		}
		defer resp.Body.Close()
		b.resp.status, b.resp.header = resp.StatusCode, resp.Header
		close(b.headers)
		b.resp.body, b.resp.err = io.ReadAll(resp.Body)
	}()
	return b
}

// norm is a response in comparable form.
type norm struct {
	status int
	head   string // the compared headers, one per line
	body   string
	ttls   []int64 // the ttl values, in order; compared with a tolerance of 1
}

func (n norm) String() string {
	return fmt.Sprintf("%d\n%s%s (ttls %v)", n.status, n.head, n.body, n.ttls)
}

var (
	indexFieldRE = regexp.MustCompile(`"(modifiedIndex|createdIndex|index)":(\d+)`)
	inOrderRE    = regexp.MustCompile(`\d{20,}`)
	casCauseRE   = regexp.MustCompile(`\[(\d+) != (\d+)\]`)
	clearedRE    = regexp.MustCompile(`cleared \[(\d+)/(\d+)\]`)
	expirationRE = regexp.MustCompile(`"expiration":"([^"]*)"`)
	ttlRE        = regexp.MustCompile(`"ttl":(-?\d+)`)
)

// rel writes index n relative to base: "i+3", "i-2"; 0 (etcd's "no index")
// stays 0.
func rel(n, base uint64) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("i%+d", int64(n)-int64(base))
}

func relString(s string, base uint64) string {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return "BAD(" + s + ")"
	}
	return rel(n, base)
}

// normalize makes r comparable across servers.
func normalize(base uint64, r response) norm {
	if r.err != nil {
		return norm{body: "transport error: " + r.err.Error()}
	}
	if r.bulk != "" {
		return norm{body: "bulk " + r.bulk}
	}
	var n norm
	n.status = r.status
	var h strings.Builder
	for _, k := range []string{"Content-Type", "Allow", "Location"} {
		if v := r.header.Get(k); v != "" {
			fmt.Fprintf(&h, "%s: %s\n", k, v)
		}
	}
	if v := r.header.Get("X-Etcd-Index"); v != "" {
		fmt.Fprintf(&h, "X-Etcd-Index: %s\n", relString(v, base))
	}
	for _, k := range []string{"X-Raft-Index", "X-Raft-Term", "X-Etcd-Cluster-Id"} {
		if r.header.Get(k) != "" {
			fmt.Fprintf(&h, "%s: present\n", k)
		}
	}
	if r.early {
		h.WriteString("(headers flushed before the event)\n")
	}
	n.head = h.String()
	n.body, n.ttls = normalizeBody(string(r.body), base)
	return n
}

func normalizeBody(b string, base uint64) (string, []int64) {
	b = indexFieldRE.ReplaceAllStringFunc(b, func(m string) string {
		sub := indexFieldRE.FindStringSubmatch(m)
		return `"` + sub[1] + `":` + relString(sub[2], base)
	})
	b = inOrderRE.ReplaceAllStringFunc(b, func(m string) string {
		if len(m) != 20 {
			return m
		}
		return "k" + strings.TrimPrefix(relString(m, base), "i")
	})
	b = casCauseRE.ReplaceAllStringFunc(b, func(m string) string {
		sub := casCauseRE.FindStringSubmatch(m)
		return "[" + relString(sub[1], base) + " != " + relString(sub[2], base) + "]"
	})
	b = clearedRE.ReplaceAllStringFunc(b, func(m string) string {
		sub := clearedRE.FindStringSubmatch(m)
		return "cleared [" + relString(sub[1], base) + "/" + relString(sub[2], base) + "]"
	})
	b = expirationRE.ReplaceAllStringFunc(b, func(m string) string {
		v := expirationRE.FindStringSubmatch(m)[1]
		if t, err := time.Parse(time.RFC3339Nano, v); err != nil || t.Location() != time.UTC {
			return `"expiration":"BAD(` + v + `)"`
		}
		return `"expiration":"E"`
	})
	var ttls []int64
	b = ttlRE.ReplaceAllStringFunc(b, func(m string) string {
		v, _ := strconv.ParseInt(ttlRE.FindStringSubmatch(m)[1], 10, 64)
		ttls = append(ttls, v)
		return `"ttl":T`
	})
	return b, ttls
}

// diff describes how got differs from want, or is "".
func (want norm) diff(got norm) string {
	var d []string
	if want.status != got.status {
		d = append(d, fmt.Sprintf("status %d != %d", want.status, got.status))
	}
	if want.head != got.head {
		d = append(d, fmt.Sprintf("headers:\n%s  vs\n%s", indent(want.head), indent(got.head)))
	}
	if want.body != got.body {
		d = append(d, fmt.Sprintf("body:\n  %s  vs\n  %s", want.body, got.body))
	} else {
		for i := range want.ttls {
			if a, b := want.ttls[i], got.ttls[i]; a-b > 1 || b-a > 1 {
				d = append(d, fmt.Sprintf("ttl #%d: %d vs %d", i, a, b))
			}
		}
	}
	return strings.Join(d, "\n")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

// checkWant verifies a step's own expectations (status, errorCode) on one
// server's outcome: they make sure the script reaches the case it claims.
func checkWant(st step, o outcome) string {
	if o.resp.err != nil {
		return o.resp.err.Error()
	}
	if st.want != 0 && o.resp.bulk == "" && o.resp.status != st.want {
		return fmt.Sprintf("status %d, want %d; body %s", o.resp.status, st.want, o.resp.body)
	}
	if st.code != 0 {
		var e store.Error
		if err := json.Unmarshal(o.resp.body, &e); err != nil || e.ErrorCode != st.code {
			return fmt.Sprintf("errorCode: want %d; body %q", st.code, o.resp.body)
		}
	}
	return ""
}

// runDifferential runs every script on ref and sut (concurrently on the
// two servers, one script at a time on each) and reports each step where
// they disagree. ref must be etcd; when sut is cairn, steps with a fix are
// checked against the fix instead.
func runDifferential(t *testing.T, ref, sut *Server, scripts []script) {
	dump := os.Getenv("CAIRN_E2E_DUMP") == "1"
	// One write first, so that no script starts at store index 0, where
	// "index":0 could not be told from etcd's 0 of parse errors. The key
	// is hidden, so root listings do not show it.
	for _, s := range []*Server{ref, sut} {
		if resp, body := s.Put(t, "/v2/keys/_warmup", "", "value=x"); resp.StatusCode/100 != 2 {
			t.Fatalf("%s: warm-up write: %d %s", s, resp.StatusCode, body)
		}
	}
	var disagree []string
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			var ro, so []outcome
			var wg sync.WaitGroup
			wg.Go(func() { ro = runScript(ref, sc) })
			wg.Go(func() { so = runScript(sut, sc) })
			wg.Wait()
			if len(ro) != len(sc.steps)+1 || len(so) != len(sc.steps)+1 {
				t.Fatalf("script aborted:\n%s: %v\n%s: %v", ref, ro[len(ro)-1].resp.err, sut, so[len(so)-1].resp.err)
			}
			for i := range ro {
				var st step
				if i > 0 {
					st = sc.steps[i-1]
					if st.join != "" {
						st = joinOf(sc.steps, st)
					}
				}
				r, s := ro[i], so[i]
				if dump {
					t.Logf("step %d %s\n%s", i, r.desc, indent(r.norm.String()))
				}
				if msg := checkWant(st, r); msg != "" {
					t.Errorf("step %d %s: %s: %s", i, r.desc, ref, msg)
				}
				if st.fix != nil && sut.Kind == KindCairn {
					want := norm{status: st.fix.want, head: s.norm.head, body: st.fix.body, ttls: s.norm.ttls}
					d := want.diff(s.norm)
					if st.fix.head != "" && !strings.Contains(s.norm.head, st.fix.head+"\n") {
						d += fmt.Sprintf("\nheaders: want %q in\n%s", st.fix.head, indent(s.norm.head))
					}
					if d != "" {
						disagree = append(disagree, fmt.Sprintf("%s step %d %s (fix)", sc.name, i, s.desc))
						t.Errorf("step %d %s: cairn must fix an etcd bug (%s):\n%s\netcd (not asserted): %s", i, s.desc, st.fix.note, d, r.norm.body)
					}
					continue
				}
				if msg := checkWant(st, s); msg != "" {
					t.Errorf("step %d %s: %s: %s", i, s.desc, sut, msg)
				}
				if d := r.norm.diff(s.norm); d != "" {
					disagree = append(disagree, fmt.Sprintf("%s step %d %s", sc.name, i, s.desc))
					t.Errorf("step %d %s: %s and %s disagree:\n%s\nraw %s: %d %s\nraw %s: %d %s",
						i, r.desc, ref.Kind, sut.Kind, d, ref.Kind, r.resp.status, r.resp.body, sut.Kind, s.resp.status, s.resp.body)
				}
			}
		})
	}
	if len(disagree) > 0 {
		t.Logf("%d steps disagree:\n  %s", len(disagree), strings.Join(disagree, "\n  "))
	}
}

// joinOf returns the background step that a join step completes, with the
// join's expectations.
func joinOf(steps []step, j step) step {
	for _, st := range steps {
		if st.bg == j.join {
			st.want, st.code, st.fix = j.want, j.code, j.fix
			return st
		}
	}
	return j
}
