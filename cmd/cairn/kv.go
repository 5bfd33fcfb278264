package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit statuses of the kv commands: etcdctl v2's, so that scripts written
// for `etcdctl` keep their meaning.
const (
	exitBadArgs       = 1 // bad arguments or settings; `get` of a directory
	exitBadConnection = 2 // no member answered
	exitServerError   = 4 // the cluster answered with an error
)

// Output formats of etcdctl v2's --output.
const (
	outputSimple   = "simple"
	outputJSON     = "json"
	outputExtended = "extended"
)

// newKVCmd is etcdctl v2's key commands (get, set, mk, mkdir, setdir,
// update, updatedir, rm, rmdir, ls, watch, exec-watch) over Cairn's mutual
// TLS: the same requests, output and exit statuses.
func newKVCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read, write and watch keys (etcdctl v2 get, set, ls, watch, ...)",
		Long: `Read, write and watch keys through the etcd v2 keys API (/v2/keys), with
etcdctl v2's flags, output (--output simple, json or extended) and exit
statuses: 0 success, 1 bad arguments (and get of a directory), 2 no member
answered, 4 the cluster answered with an error, printed as etcdctl does:

  Error:  100: Key not found (/a) [12]

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001.`,
		Example: `  cairn kv set /config/mode fast --data-dir /tmp/cairn-dev
  cairn kv get /config/mode
  cairn kv ls --recursive --sort -p /config
  cairn kv -o json get /config/mode
  cairn kv set --swap-with-value fast /config/mode slow
  cairn kv watch --forever --recursive /config
  cairn kv exec-watch --recursive /config -- sh -c 'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY"'`,
	}
	k := &kvCmd{stdout: stdout, stderr: stderr, environ: environ}
	k.cf = addClientFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVarP(&k.output, "output", "o", outputSimple, "output format: simple, json or extended (etcdctl's -o)")

	ttlFlag := func(c *cobra.Command) {
		c.Flags().Int("ttl", 0, "key time-to-live in seconds (0: none)")
	}
	ttl := func(c *cobra.Command) int { n, _ := c.Flags().GetInt("ttl"); return n }

	get := k.command("get <key>", "Print the value of a key", func(c *cobra.Command) {
		c.Flags().Bool("sort", false, "return the result in sorted order")
		c.Flags().BoolP("quorum", "q", false, "require a quorum read (Cairn's reads are linearizable anyway)")
	}, k.get)
	set := k.command("set <key> <value>", "Set the value of a key (the value is read from stdin when not given)", func(c *cobra.Command) {
		ttlFlag(c)
		c.Flags().String("swap-with-value", "", "set only if the current value is this one")
		c.Flags().Uint64("swap-with-index", 0, "set only if the key's modifiedIndex is this one")
	}, func(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
		prevValue, _ := cmd.Flags().GetString("swap-with-value")
		prevIndex, _ := cmd.Flags().GetUint64("swap-with-index")
		return k.setKey(ctx, c, cmd, args, kvSet{ttl: ttl(cmd), prevValue: prevValue, prevIndex: prevIndex})
	})
	mk := k.command("mk <key> <value>", "Create a key that must not exist (the value is read from stdin when not given)", func(c *cobra.Command) {
		ttlFlag(c)
		c.Flags().Bool("in-order", false, "create an in-order key under the directory <key>")
	}, func(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
		if inOrder, _ := cmd.Flags().GetBool("in-order"); inOrder {
			return k.mkInOrder(ctx, c, cmd, args, ttl(cmd))
		}
		return k.setKey(ctx, c, cmd, args, kvSet{ttl: ttl(cmd), prevExist: "false"})
	})
	update := k.command("update <key> <value>", "Update a key that must exist (the value is read from stdin when not given)", ttlFlag,
		func(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
			return k.setKey(ctx, c, cmd, args, kvSet{ttl: ttl(cmd), prevExist: "true"})
		})
	mkdir := k.command("mkdir <key>", "Create a directory that must not exist", ttlFlag,
		func(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
			return k.setDir(ctx, c, args, kvSet{ttl: ttl(cmd), prevExist: "false"})
		})
	setdir := k.command("setdir <key>", "Create a directory, or replace a key with an empty one (an existing directory: error 102, use updatedir)", ttlFlag,
		func(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
			return k.setDir(ctx, c, args, kvSet{ttl: ttl(cmd)})
		})
	updatedir := k.command("updatedir <key>", "Set the TTL of an existing directory (no --ttl: make it permanent)", ttlFlag,
		func(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
			return k.setDir(ctx, c, args, kvSet{ttl: ttl(cmd), prevExist: "true"})
		})
	rm := k.command("rm <key>", "Remove a key, or a directory with --dir or --recursive", func(c *cobra.Command) {
		c.Flags().Bool("dir", false, "remove the key if it is an empty directory or a key-value pair")
		c.Flags().BoolP("recursive", "r", false, "remove the key and everything under it")
		c.Flags().String("with-value", "", "remove only if the current value is this one")
		c.Flags().Uint64("with-index", 0, "remove only if the key's modifiedIndex is this one")
	}, k.rm)
	rmdir := k.command("rmdir <key>", "Remove an empty directory (or a key-value pair)", nil,
		func(ctx context.Context, c *apiClient, _ *cobra.Command, args []string) error {
			return k.remove(ctx, c, args, url.Values{"dir": {"true"}})
		})
	ls := k.command("ls [key]", "List a directory (default /)", func(c *cobra.Command) {
		c.Flags().Bool("sort", false, "return the result in sorted order")
		c.Flags().BoolP("recursive", "r", false, "list every key under the directory, at every depth")
		c.Flags().BoolP("slash", "p", false, "append a slash (/) to directories")
		c.Flags().BoolP("quorum", "q", false, "require a quorum read (Cairn's reads are linearizable anyway)")
	}, k.ls)
	watch := k.command("watch <key>", "Wait for a change of a key and print it; with --forever, every change until interrupted", func(c *cobra.Command) {
		c.Flags().BoolP("forever", "f", false, "watch until interrupted (Ctrl+C)")
		c.Flags().Uint64("after-index", 0, "watch from the change after this store index (history replays what came since)")
		c.Flags().BoolP("recursive", "r", false, "watch the key and every key under it")
	}, k.watchCmd)
	execWatch := k.command("exec-watch <key> [--] <command> [args...]", "Run a command on every change of a key, until interrupted", func(c *cobra.Command) {
		c.Flags().Uint64("after-index", 0, "watch from the change after this store index (history replays what came since)")
		c.Flags().BoolP("recursive", "r", false, "watch the key and every key under it")
		// Everything after the key belongs to the command, its flags too.
		c.Flags().SetInterspersed(false)
	}, k.execWatch)
	execWatch.Long = `Run a command on every change of a key (with --recursive, of any key under
it), one run at a time, until interrupted. The command sees the change in
its environment, as with etcdctl:

  ETCD_WATCH_ACTION          set, update, create, delete, expire, compareAndSwap, ...
  ETCD_WATCH_KEY             the key that changed
  ETCD_WATCH_VALUE           its new value ("" when deleted)
  ETCD_WATCH_MODIFIED_INDEX  the store index of the change

Flags go before the key: everything after it is the command and its
arguments. Changes to directories are not run, only noted on stderr.`
	execWatch.Example = `  cairn kv exec-watch --recursive /config -- sh -c 'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE"'`
	set.Long = "Set the value of a key, creating it (and missing parent directories) if needed.\n" +
		"With --swap-with-value or --swap-with-index, set it only if the current value\n" +
		"or modifiedIndex matches (compare-and-swap). A value that begins with '-'\n" +
		"goes after '--': cairn kv set -- /key -value."
	cmd.AddCommand(get, set, mk, mkdir, setdir, update, updatedir, rm, rmdir, ls, watch, execWatch)
	return cmd
}

// kvCmd holds what every kv subcommand shares.
type kvCmd struct {
	stdout, stderr io.Writer
	environ        []string
	cf             *clientFlags
	output         string
}

type kvFunc func(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error

// command makes a subcommand that runs fn with a client, reports its error
// as etcdctl does and exits with etcdctl's status (see fail).
func (k *kvCmd) command(use, short string, flags func(*cobra.Command), fn kvFunc) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		// etcdctl checks the arguments itself, with its own messages.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if err := k.run(ctx, cmd, args, fn); err != nil {
				return k.fail(ctx, err)
			}
			return nil
		},
		ValidArgsFunction: k.completeKey,
	}
	if flags != nil {
		flags(c)
	}
	return c
}

func (k *kvCmd) run(ctx context.Context, cmd *cobra.Command, args []string, fn kvFunc) error {
	switch k.output {
	case outputSimple, outputJSON, outputExtended:
	default:
		return fmt.Errorf("unsupported output format %q: use simple, json or extended", k.output)
	}
	c, err := k.cf.client(k.environ)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c, cmd, args)
}

// exitStatusError is a kv command's error with the exit status etcdctl
// gives it. ExitCode lets a caller that honours it (as the tests do) use it.
type exitStatusError struct {
	code int
	err  error
	bare bool // print the message as is, without etcdctl's "Error:  "
}

func (e *exitStatusError) Error() string { return e.err.Error() }
func (e *exitStatusError) Unwrap() error { return e.err }

// ExitCode is the process exit status the error calls for.
func (e *exitStatusError) ExitCode() int { return e.code }

func withStatus(code int, err error) error { return &exitStatusError{code: code, err: err} }

// noExitKey marks a context in which a failing kv command returns its
// *exitStatusError instead of ending the process: tests run commands in
// process.
type noExitKey struct{}

// fail prints err as etcdctl does ("Error:  " and the message, on stderr)
// and ends the process with the error's status: main would print it again
// and always exit with 1. Under noExitKey it returns the error instead.
func (k *kvCmd) fail(ctx context.Context, err error) error {
	var se *exitStatusError
	if !errors.As(err, &se) {
		se = &exitStatusError{code: exitBadArgs, err: err}
	}
	if se.bare {
		fmt.Fprintln(k.stderr, se.err)
	} else {
		fmt.Fprintln(k.stderr, "Error: ", se.err)
	}
	if ctx.Value(noExitKey{}) == nil {
		os.Exit(se.code)
	}
	return se
}

// kvNode is a node as etcdctl prints it in JSON (the Go v2 client's Node):
// "nodes" is null when empty, dir, expiration and ttl are left out when
// zero.
type kvNode struct {
	Key           string     `json:"key"`
	Dir           bool       `json:"dir,omitempty"`
	Value         string     `json:"value"`
	Nodes         []*kvNode  `json:"nodes"`
	CreatedIndex  uint64     `json:"createdIndex"`
	ModifiedIndex uint64     `json:"modifiedIndex"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
}

// kvResponse is a successful /v2/keys answer as etcdctl prints it in JSON:
// "prevNode" is null when absent.
type kvResponse struct {
	Action   string  `json:"action"`
	Node     *kvNode `json:"node"`
	PrevNode *kvNode `json:"prevNode"`
	// Index is X-Etcd-Index: the store index when the answer was made (for
	// a watch, when it started).
	Index uint64 `json:"-"`
}

// kvError is an etcd key error, printed as the Go v2 client prints it.
type kvError struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"`
}

func (e *kvError) Error() string {
	return fmt.Sprintf("%d: %s (%s) [%d]", e.Code, e.Message, e.Cause, e.Index)
}

// canonicalKey is the Go v2 client's key path: rooted, cleaned, with a
// trailing slash kept.
func canonicalKey(key string) string {
	if key == "" || key[0] != '/' {
		key = "/" + key
	}
	p := path.Clean(key)
	if strings.HasSuffix(key, "/") && p != "/" {
		p += "/"
	}
	return p
}

// keysURI is the request URI of key with query q.
func keysURI(key string, q url.Values) string {
	u := url.URL{Path: "/v2/keys" + canonicalKey(key), RawQuery: q.Encode()}
	return u.RequestURI()
}

// send makes one /v2/keys request and decodes its answer; errors carry the
// exit status etcdctl gives them.
func send(ctx context.Context, c *apiClient, req apiRequest) (*kvResponse, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, withStatus(exitBadConnection, err)
	}
	return decodeKeys(resp)
}

func decodeKeys(resp *apiResponse) (*kvResponse, error) {
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		var kr kvResponse
		if err := json.Unmarshal(resp.Body, &kr); err != nil || kr.Node == nil {
			return nil, withStatus(exitServerError, fmt.Errorf("unexpected answer from %s (HTTP %d): %.200q", resp.Endpoint, resp.StatusCode, resp.Body))
		}
		kr.Index, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
		return &kr, nil
	}
	var ke kvError
	if json.Unmarshal(resp.Body, &ke) == nil && ke.Code != 0 {
		return nil, withStatus(exitServerError, &ke)
	}
	return nil, withStatus(exitServerError, newAPIError(resp))
}

// kvSet is a PUT: the Go v2 client's SetOptions.
type kvSet struct {
	value     string
	dir       bool
	ttl       int
	prevValue string
	prevIndex uint64
	prevExist string // "", "true" or "false"
}

// put sends the PUT as the Go v2 client does: value and ttl in the form
// body, the conditions in the query.
func put(ctx context.Context, c *apiClient, key string, s kvSet) (*kvResponse, error) {
	q, form := url.Values{}, url.Values{}
	if s.dir {
		q.Set("dir", "true")
	} else {
		if s.prevValue != "" {
			q.Set("prevValue", s.prevValue)
		}
		form.Set("value", s.value)
	}
	if s.prevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(s.prevIndex, 10))
	}
	if s.prevExist != "" {
		q.Set("prevExist", s.prevExist)
	}
	if s.ttl > 0 {
		form.Set("ttl", strconv.Itoa(s.ttl))
	}
	return send(ctx, c, apiRequest{Method: http.MethodPut, Path: keysURI(key, q),
		Body: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded"})
}

// keyArg is the first argument, which etcdctl requires.
func keyArg(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("key required")
	}
	return args[0], nil
}

// valueArg is the second argument or, as etcdctl does, all of stdin.
func valueArg(cmd *cobra.Command, args []string) (string, error) {
	if len(args) > 1 {
		return args[1], nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxResponseBytes))
	if err != nil || len(b) == 0 {
		return "", errors.New("value required")
	}
	return string(b), nil
}

func (k *kvCmd) setKey(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string, s kvSet) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	if s.value, err = valueArg(cmd, args); err != nil {
		return err
	}
	resp, err := put(ctx, c, key, s)
	if err != nil {
		return err
	}
	return printResponse(k.stdout, resp, k.output)
}

// setDir is mkdir, setdir and updatedir: nothing is printed in the simple
// format.
func (k *kvCmd) setDir(ctx context.Context, c *apiClient, args []string, s kvSet) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	s.dir = true
	resp, err := put(ctx, c, key, s)
	if err != nil {
		return err
	}
	if k.output == outputSimple {
		return nil
	}
	return printResponse(k.stdout, resp, k.output)
}

// mkInOrder is `mk --in-order`: a POST that creates a key named by its
// index under the directory.
func (k *kvCmd) mkInOrder(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string, ttl int) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	value, err := valueArg(cmd, args)
	if err != nil {
		return err
	}
	form := url.Values{"value": {value}}
	if ttl > 0 {
		form.Set("ttl", strconv.Itoa(ttl))
	}
	resp, err := send(ctx, c, apiRequest{Method: http.MethodPost, Path: keysURI(key, nil),
		Body: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded"})
	if err != nil {
		return err
	}
	return printResponse(k.stdout, resp, k.output)
}

func (k *kvCmd) rm(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
	q := url.Values{}
	if v, _ := cmd.Flags().GetString("with-value"); v != "" {
		q.Set("prevValue", v)
	}
	if i, _ := cmd.Flags().GetUint64("with-index"); i != 0 {
		q.Set("prevIndex", strconv.FormatUint(i, 10))
	}
	if dir, _ := cmd.Flags().GetBool("dir"); dir {
		q.Set("dir", "true")
	}
	if r, _ := cmd.Flags().GetBool("recursive"); r {
		q.Set("recursive", "true")
	}
	return k.remove(ctx, c, args, q)
}

// remove is rm and rmdir: a removed directory is not printed in the simple
// format.
func (k *kvCmd) remove(ctx context.Context, c *apiClient, args []string, q url.Values) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	resp, err := send(ctx, c, apiRequest{Method: http.MethodDelete, Path: keysURI(key, q)})
	if err != nil {
		return err
	}
	if resp.Node.Dir && k.output == outputSimple {
		return nil
	}
	return printResponse(k.stdout, resp, k.output)
}

func getQuery(cmd *cobra.Command) url.Values {
	q := url.Values{}
	for flag, param := range map[string]string{"sort": "sorted", "quorum": "quorum", "recursive": "recursive"} {
		if on, err := cmd.Flags().GetBool(flag); err == nil && on {
			q.Set(param, "true")
		}
	}
	return q
}

func (k *kvCmd) get(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	resp, err := send(ctx, c, apiRequest{Method: http.MethodGet, Path: keysURI(key, getQuery(cmd))})
	if err != nil {
		return err
	}
	if resp.Node.Dir {
		return &exitStatusError{code: exitBadArgs, err: fmt.Errorf("%s: is a directory", resp.Node.Key), bare: true}
	}
	return printResponse(k.stdout, resp, k.output)
}

// ls prints key names in the simple format (a file lists itself, a
// directory its children) and the whole answer in the others.
func (k *kvCmd) ls(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
	key := "/"
	if len(args) > 0 {
		key = args[0]
	}
	resp, err := send(ctx, c, apiRequest{Method: http.MethodGet, Path: keysURI(key, getQuery(cmd))})
	if err != nil {
		return err
	}
	if k.output != outputSimple {
		return printResponse(k.stdout, resp, k.output)
	}
	slash, _ := cmd.Flags().GetBool("slash")
	var b strings.Builder
	if !resp.Node.Dir {
		b.WriteString(resp.Node.Key + "\n")
	}
	var walk func(n *kvNode)
	walk = func(n *kvNode) {
		b.WriteString(n.Key)
		if n.Dir && slash {
			b.WriteByte('/')
		}
		b.WriteByte('\n')
		for _, child := range n.Nodes {
			walk(child)
		}
	}
	for _, n := range resp.Node.Nodes {
		walk(n)
	}
	_, err = io.WriteString(k.stdout, b.String())
	return err
}

// printResponse is etcdctl's printResponseKey.
func printResponse(w io.Writer, resp *kvResponse, format string) error {
	var b strings.Builder
	switch format {
	case outputSimple:
		if resp.Action != "delete" {
			b.WriteString(resp.Node.Value + "\n")
		} else {
			b.WriteString("PrevNode.Value: " + prevValue(resp) + "\n")
		}
	case outputExtended:
		fmt.Fprintf(&b, "Key: %s\nCreated-Index: %d\nModified-Index: %d\n", resp.Node.Key, resp.Node.CreatedIndex, resp.Node.ModifiedIndex)
		if resp.PrevNode != nil {
			fmt.Fprintf(&b, "PrevNode.Value: %s\n", resp.PrevNode.Value)
		}
		fmt.Fprintf(&b, "TTL: %d\nIndex: %d\n", resp.Node.TTL, resp.Index)
		if resp.Action != "delete" {
			b.WriteString("\n" + resp.Node.Value + "\n")
		}
	case outputJSON:
		j, err := json.Marshal(resp)
		if err != nil {
			return err
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func prevValue(resp *kvResponse) string {
	if resp.PrevNode == nil {
		return ""
	}
	return resp.PrevNode.Value
}

// completeKey completes the key argument from the cluster: the children of
// the directory typed so far, directories with a trailing slash.
func (k *kvCmd) completeKey(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	c, err := k.cf.client(k.environ)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer c.Close()
	dir := "/"
	if i := strings.LastIndexByte(toComplete, '/'); i > 0 {
		dir = toComplete[:i]
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	resp, err := send(ctx, c, apiRequest{Method: http.MethodGet, Path: keysURI(dir, url.Values{"sorted": {"true"}})})
	if err != nil || !resp.Node.Dir {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, n := range resp.Node.Nodes {
		name := n.Key
		if n.Dir {
			name += "/"
		}
		if strings.HasPrefix(name, toComplete) || strings.HasPrefix(name, canonicalKey(toComplete)) {
			out = append(out, name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// kvWatch is a watch as etcdctl's watcher runs it: each answer moves the
// wait index past the change it reports, so that no change is missed or
// seen twice.
type kvWatch struct {
	key       string
	recursive bool
	// afterIndex: the first change reported is the first one after this
	// store index; 0 is "from now".
	afterIndex uint64
}

// watch long-polls the keys API and calls handle with each change until
// handle says stop, ctx ends (an interrupt: no error, as etcdctl exits 0)
// or an error ends it. A connection that fails moves the watch to the next
// endpoint, from the same index; when every endpoint failed in a row the
// watch ends. An event index that left the member's history (etcd error
// 401) resumes the watch from the member's current index, with a warning:
// the changes in between are lost.
func (k *kvCmd) watch(ctx context.Context, c *apiClient, w kvWatch, handle func(*kvResponse) (stop bool, err error)) error {
	var waitIndex uint64
	if w.afterIndex > 0 {
		waitIndex = w.afterIndex + 1
	}
	ep, failed := 0, []string(nil)
	for {
		q := url.Values{"wait": {"true"}}
		if waitIndex > 0 {
			q.Set("waitIndex", strconv.FormatUint(waitIndex, 10))
		}
		if w.recursive {
			q.Set("recursive", "true")
		}
		resp, err := longPoll(ctx, c, c.endpoints[ep], keysURI(w.key, q))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failed = append(failed, c.endpoints[ep]+": "+err.Error())
			if len(failed) == len(c.endpoints) {
				return withStatus(exitBadConnection, fmt.Errorf("watch %s: no endpoint answered (%s)", w.key, strings.Join(failed, "; ")))
			}
			ep = (ep + 1) % len(c.endpoints)
			continue
		}
		failed = nil
		if resp.StatusCode == http.StatusOK && len(strings.TrimSpace(string(resp.Body))) == 0 {
			// The member ended the watch without a change (etcd's client
			// reads an empty body as "ask again"): ask again.
			continue
		}
		ev, err := decodeKeys(resp)
		var ke *kvError
		if errors.As(err, &ke) && ke.Code == 401 {
			now, perr := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
			if perr != nil || now == 0 {
				now = ke.Index
			}
			if now+1 <= waitIndex {
				return err
			}
			fmt.Fprintf(k.stderr, "Warning: the changes from index %d on have left the history of %s (%s); changes up to index %d are lost: watching from index %d\n",
				waitIndex, resp.Endpoint, ke.Cause, now, now+1)
			waitIndex = now + 1
			continue
		}
		if err != nil {
			return err
		}
		waitIndex = ev.Node.ModifiedIndex + 1
		stop, err := handle(ev)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil || stop {
			return err
		}
	}
}

// longPoll is a GET without a deadline on the answer, for a watch: only
// the headers must come within the client's timeout (Cairn and etcd send
// them as soon as the watch is registered).
func longPoll(ctx context.Context, c *apiClient, ep, uri string) (*apiResponse, error) {
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	headers := time.AfterFunc(c.timeout, cancel)
	req, err := http.NewRequestWithContext(pollCtx, http.MethodGet, ep+uri, nil)
	if err != nil {
		return nil, err
	}
	hresp, err := c.hc.Do(req)
	if !headers.Stop() {
		if err == nil {
			hresp.Body.Close()
		}
		return nil, fmt.Errorf("no answer within %v (--timeout)", c.timeout)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errors.New(c.explain(ctx, ep, err))
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("the watch broke off: %w", err)
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("the answer is larger than %d MiB", maxResponseBytes>>20)
	}
	return &apiResponse{StatusCode: hresp.StatusCode, Header: hresp.Header, Body: b, Endpoint: ep}, nil
}

func watchFlags(cmd *cobra.Command, key string) kvWatch {
	w := kvWatch{key: key}
	w.recursive, _ = cmd.Flags().GetBool("recursive")
	w.afterIndex, _ = cmd.Flags().GetUint64("after-index")
	return w
}

// watchCmd is `watch`: it prints the first change of a file (with
// --recursive, preceded by "[action] key"), or every one with --forever.
// Changes to directories are skipped.
func (k *kvCmd) watchCmd(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
	key, err := keyArg(args)
	if err != nil {
		return err
	}
	w := watchFlags(cmd, key)
	forever, _ := cmd.Flags().GetBool("forever")
	return k.watch(ctx, c, w, func(ev *kvResponse) (bool, error) {
		if ev.Node.Dir {
			return false, nil
		}
		if w.recursive {
			if _, err := fmt.Fprintf(k.stdout, "[%s] %s\n", ev.Action, ev.Node.Key); err != nil {
				return true, err
			}
		}
		return !forever, printResponse(k.stdout, ev, k.output)
	})
}

// execWatch is `exec-watch`: it runs the command for each change of a
// file, with the change in ETCD_WATCH_* variables, one run at a time.
func (k *kvCmd) execWatch(ctx context.Context, c *apiClient, cmd *cobra.Command, args []string) error {
	if len(args) > 1 && args[1] == "--" {
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) < 2 {
		return errors.New("key and command to exec required")
	}
	w := watchFlags(cmd, args[0])
	return k.watch(ctx, c, w, func(ev *kvResponse) (bool, error) {
		if ev.Node.Dir {
			fmt.Fprintf(k.stderr, "Ignored dir %s change\n", ev.Node.Key)
			return false, nil
		}
		run := exec.CommandContext(ctx, args[1], args[2:]...)
		run.Env = append(append([]string(nil), k.environ...),
			"ETCD_WATCH_ACTION="+ev.Action,
			"ETCD_WATCH_MODIFIED_INDEX="+strconv.FormatUint(ev.Node.ModifiedIndex, 10),
			"ETCD_WATCH_KEY="+ev.Node.Key,
			"ETCD_WATCH_VALUE="+ev.Node.Value)
		run.Stdout, run.Stderr = k.stdout, k.stderr
		// An interrupt reaches the command as one, and ends the watch once
		// the command has ended.
		run.Cancel = func() error { return run.Process.Signal(os.Interrupt) }
		run.WaitDelay = 10 * time.Second
		if err := run.Start(); err != nil {
			return true, err
		}
		// The command's own failure is its business (etcdctl ignores it
		// too); its stderr says why.
		_ = run.Wait()
		return false, nil
	})
}
