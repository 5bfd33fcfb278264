package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file reads the fenced code blocks of the README and docs/*.md and
// rewrites their shell commands so that TestDocs (docs_test.go) can run them
// on free ports in a scratch directory.
//
// The convention the docs follow:
//
//   - Every fence has an info string. `sh`, `bash` and `shell` blocks are
//     run. In a `console` block (a transcript) the lines that start with
//     "$ " are run and the rest is output. Anything else (`text` for
//     output, `toml`, `go`, `yaml`, ...) is only shown. An untagged fence is
//     an error, so that no command hides in a block that nobody runs.
//   - A shell block that cannot run on a test machine says why, in an HTML
//     comment on the last non-blank line before its fence:
//     <!-- docs-test: skip: needs systemd -->
//   - A block that runs until it is stopped (a server, a watch, a sidecar,
//     which a reader starts in another terminal) is marked
//     <!-- docs-test: background; ready=4001 -->
//     and runs in the background until the end of its document; with
//     ready=PORT[,PORT], the next block waits until those (documented)
//     ports accept TCP connections.
//   - <!-- docs-test: stop-background --> before a block stops the
//     background blocks first, where the text asks the reader to stop them
//     (Ctrl+C in the other terminal).
//   - A `go` block that is a whole program ("package main") is built and
//     run by TestDocsGoPrograms (docs_go_test.go) against a development
//     member at /tmp/cairn-dev, port 4001, both rewritten as here; a `text`
//     block right after it is what it must print.
//
// What the runner changes, and nothing else: documented ports become free
// ports, /tmp becomes the scratch directory's tmp, `go run ./cmd/cairn` and
// `go build -o FILE ./cmd/cairn` use the binary TestMain built (see
// DocRewriter.Rewrite). The blocks of a document run in order in one bash
// session with set -e and pipefail, in a directory that links the
// repository's top-level entries (config.example.toml, deploy/, ...).

// DocBlock is one fenced code block of a markdown document.
type DocBlock struct {
	Line       int    // 1-based line of the opening fence
	Info       string // the info string's first word, lower case ("sh", "text", ...)
	Text       string // the block's lines, fence indentation removed
	Skip       string // why the block is not run (a skip marker)
	Background bool   // runs in the background until the end of the document
	Ready      []int  // documented ports that accept connections once a background block is up
	Stop       bool   // stop the background blocks before this one runs
}

// shellInfos are the info strings of blocks that are run.
var shellInfos = []string{"sh", "bash", "shell", "console"}

// IsShell reports whether the block is one that is run (or skipped by a marker).
func (b DocBlock) IsShell() bool { return slices.Contains(shellInfos, b.Info) }

var (
	fenceRE  = regexp.MustCompile("^( *)(```+|~~~+)\\s*([^`\\s]*)[^`]*$")
	markerRE = regexp.MustCompile(`^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$`)
)

// ParseDocBlocks returns the fenced blocks of a markdown document. It fails
// on an unclosed or untagged fence, on a marker that is not followed by a
// shell block, and on a marker it does not understand.
func ParseDocBlocks(src string) ([]DocBlock, error) {
	lines := strings.Split(src, "\n")
	var (
		blocks     []DocBlock
		marker     string // pending marker text
		markerLine int
	)
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := markerRE.FindStringSubmatch(line); m != nil {
			if marker != "" {
				return nil, fmt.Errorf("line %d: docs-test marker not followed by a fence (another marker at line %d)", markerLine, i+1)
			}
			marker, markerLine = m[1], i+1
			continue
		}
		m := fenceRE.FindStringSubmatch(line)
		if m == nil {
			if marker != "" && strings.TrimSpace(line) != "" {
				return nil, fmt.Errorf("line %d: docs-test marker must be the last non-blank line before a fence", markerLine)
			}
			continue
		}
		indent, fence := len(m[1]), m[2]
		b := DocBlock{Line: i + 1, Info: strings.ToLower(m[3])}
		if b.Info == "" {
			return nil, fmt.Errorf("line %d: fence without an info string: write ```sh for commands that are run, ```text for output", i+1)
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			l := lines[i]
			if t := strings.TrimSpace(l); strings.HasPrefix(t, fence[:1]) && strings.Trim(t, fence[:1]) == "" && len(t) >= len(fence) {
				closed = true
				break
			}
			body = append(body, trimIndent(l, indent))
		}
		if !closed {
			return nil, fmt.Errorf("line %d: fence is never closed", b.Line)
		}
		if b.Info == "console" {
			body = consoleCommands(body)
		}
		b.Text = strings.Join(body, "\n") + "\n"
		if marker != "" {
			if !b.IsShell() {
				return nil, fmt.Errorf("line %d: docs-test marker on a %q block; markers are for shell blocks", markerLine, b.Info)
			}
			if err := b.applyMarker(marker); err != nil {
				return nil, fmt.Errorf("line %d: %w", markerLine, err)
			}
			marker = ""
		}
		blocks = append(blocks, b)
	}
	if marker != "" {
		return nil, fmt.Errorf("line %d: docs-test marker at the end of the document", markerLine)
	}
	return blocks, nil
}

// applyMarker reads "skip: reason" or "background[; ready=PORT,...]".
func (b *DocBlock) applyMarker(m string) error {
	if reason, ok := strings.CutPrefix(m, "skip:"); ok {
		b.Skip = strings.TrimSpace(reason)
		if b.Skip == "" {
			return fmt.Errorf("docs-test skip marker without a reason: <!-- docs-test: skip: needs systemd -->")
		}
		return nil
	}
	for _, d := range strings.Split(m, ";") {
		d = strings.TrimSpace(d)
		switch {
		case d == "background":
			b.Background = true
		case d == "stop-background":
			b.Stop = true
		case strings.HasPrefix(d, "ready="):
			for _, p := range strings.Split(strings.TrimPrefix(d, "ready="), ",") {
				n, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil || n <= 0 || n > 65535 {
					return fmt.Errorf("docs-test ready=%s: want documented ports, e.g. ready=4001,7001", p)
				}
				b.Ready = append(b.Ready, n)
			}
		default:
			return fmt.Errorf("unknown docs-test directive %q; known: skip: <reason>, background, ready=PORT[,PORT], stop-background", d)
		}
	}
	if len(b.Ready) > 0 && !b.Background {
		return fmt.Errorf("docs-test ready= is for background blocks")
	}
	return nil
}

// consoleCommands keeps the commands of a console transcript: a line
// "$ cmd" becomes "cmd" (with the lines a trailing backslash continues it
// onto), and every output line becomes an empty line, so that line numbers
// still point into the document.
func consoleCommands(lines []string) []string {
	out := make([]string, len(lines))
	cont := false
	for i, l := range lines {
		switch {
		case cont:
			out[i] = l
		case strings.HasPrefix(l, "$ "):
			out[i] = strings.TrimPrefix(l, "$ ")
		default:
			continue
		}
		cont = strings.HasSuffix(l, "\\")
	}
	return out
}

// trimIndent removes up to n leading spaces (a fence indented in a list).
func trimIndent(s string, n int) string {
	for ; n > 0 && strings.HasPrefix(s, " "); n-- {
		s = s[1:]
	}
	return s
}

// DefaultPorts are the ports a cairn started without address flags uses:
// client, peer and DNS. They are always mapped, and the runner points the
// defaults at their free ports through CAIRN_ADDR, CAIRN_PEER_ADDR,
// CAIRN_DNS_ADDR and CAIRN_ENDPOINTS.
var DefaultPorts = []int{4001, 7001, 8053}

var (
	// hostPortRE finds documented ports: host:PORT, :PORT, dig's -p PORT,
	// --port PORT and a SkyDNS record's "port":PORT.
	hostPortRE = regexp.MustCompile(`(?:(?:\d{1,3}\.){3}\d{1,3}|localhost|\[[0-9a-fA-F:]*\]|[\s=,'"])?:(\d{4,5})\b|\s-p\s+(\d{4,5})\b|--port[ =](\d{4,5})\b|"port":\s*(\d{4,5})\b`)
	numberRE   = regexp.MustCompile(`\d+`)
	tmpRE      = regexp.MustCompile(`(^|[\s=:'"(,])/tmp(/|\b)`)
	goRunRE    = regexp.MustCompile(`\bgo run (?:\./cmd/cairn|github\.com/cairnkv/cairn/cmd/cairn)\b`)
	goBuildRE  = regexp.MustCompile(`\bgo build(?: -o (\S+))? (?:\./cmd/cairn|github\.com/cairnkv/cairn/cmd/cairn)\b`)
)

// DocPorts returns the documented ports the shell blocks that run use (at
// least 1024), plus DefaultPorts, sorted.
func DocPorts(blocks []DocBlock) []int {
	seen := map[int]bool{}
	for _, p := range DefaultPorts {
		seen[p] = true
	}
	for _, b := range blocks {
		if !b.IsShell() || b.Skip != "" {
			continue
		}
		for _, p := range b.Ready {
			seen[p] = true
		}
		for _, m := range hostPortRE.FindAllStringSubmatch(b.Text, -1) {
			for _, g := range m[1:] {
				if n, err := strconv.Atoi(g); err == nil && n >= 1024 && n <= 65535 {
					seen[n] = true
				}
			}
		}
	}
	var out []int
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// DocRewriter turns a documented command into one that runs here.
type DocRewriter struct {
	Ports map[int]int // documented port → free port
	Tmp   string      // what /tmp becomes: a directory of the scratch dir
}

// Rewrite returns text with:
//   - `go run ./cmd/cairn` replaced by `cairn`, the binary the e2e package
//     built (it is first on PATH), and `go build [-o FILE] ./cmd/cairn' by a
//     symbolic link to that binary, so no doc compiles anything;
//   - every documented port replaced by its free port (a number that is a
//     mapped port and not part of a word, a decimal or an IP address);
//   - /tmp replaced by the scratch directory's tmp, so runs never share state.
func (r DocRewriter) Rewrite(text string) string {
	text = goBuildRE.ReplaceAllStringFunc(text, func(s string) string {
		out := goBuildRE.FindStringSubmatch(s)[1]
		if out == "" {
			out = "cairn"
		}
		return `ln -sf "$DOCS_CAIRN_BIN" ` + out
	})
	text = goRunRE.ReplaceAllString(text, "cairn")
	text = r.rewritePorts(text)
	return tmpRE.ReplaceAllString(text, "${1}"+r.Tmp+"${2}")
}

func (r DocRewriter) rewritePorts(text string) string {
	var sb strings.Builder
	last := 0
	for _, loc := range numberRE.FindAllStringIndex(text, -1) {
		n, err := strconv.Atoi(text[loc[0]:loc[1]])
		to, ok := r.Ports[n]
		if err != nil || !ok {
			continue
		}
		if loc[0] > 0 {
			if c := text[loc[0]-1]; c == '.' || c == '_' || isLetter(c) {
				continue
			}
		}
		if loc[1] < len(text) {
			c := text[loc[1]]
			if c == '_' || isLetter(c) || (c == '.' && loc[1]+1 < len(text) && isDigit(text[loc[1]+1])) {
				continue
			}
		}
		sb.WriteString(text[last:loc[0]])
		sb.WriteString(strconv.Itoa(to))
		last = loc[1]
	}
	sb.WriteString(text[last:])
	return sb.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// externalTools are the programs besides cairn that docs run; a document
// that uses one that is not installed is skipped (or failed, with
// CAIRN_REQUIRE_EXTERNAL=1).
var externalTools = []string{"curl", "dig", "kdig", "openssl", "etcdctl", "etcd", "jq", "python3"}

// debianPackage names the package of each external tool, for messages.
var debianPackage = map[string]string{
	"curl": "curl", "dig": "dnsutils", "kdig": "knot-dnsutils", "openssl": "openssl",
	"etcdctl": "etcd-client", "etcd": "etcd-server", "jq": "jq", "python3": "python3",
}

// DocTools returns the external tools that text runs, in externalTools order.
func DocTools(text string) []string {
	var out []string
	for _, tool := range externalTools {
		re := regexp.MustCompile(`(^|[\s;&|(!]|\$\(|")` + regexp.QuoteMeta(tool) + `($|[\s;&|)])`)
		if re.MatchString(text) {
			out = append(out, tool)
		}
	}
	return out
}
