package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDocsGoPrograms builds every complete Go program of README.md and
// docs/*.md (a `go` block that starts with "package main") and runs it
// against a development member, as TestDocs runs the shell blocks: the
// program's documented port 4001 and /tmp paths are rewritten to the
// member's port and a scratch directory, and the member's data dir is
// /tmp/cairn-dev there (the README's first command). When a `text` block
// follows the program, its output must be that text. Fragments (no package
// clause) are not built.
func TestDocsGoPrograms(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the docs' programs with: %v", err)
	}
	root := repoRoot(t)
	docs := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, more...)
	for _, path := range docs {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := ParseDocBlocks(string(src))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for i, b := range blocks {
			if b.Info != "go" || !strings.HasPrefix(strings.TrimSpace(b.Text), "package main") {
				continue
			}
			want := ""
			if i+1 < len(blocks) && blocks[i+1].Info == "text" {
				want = blocks[i+1].Text
			}
			name := filepath.Base(path) + ":" + strconv.Itoa(b.Line)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runDocGoProgram(t, gobin, root, b.Text, want)
			})
		}
	}
}

func runDocGoProgram(t *testing.T, gobin, root, prog, want string) {
	scratch := t.TempDir()
	tmp := filepath.Join(scratch, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := &CairnConfig{Bin: needCairn(t), DataDir: filepath.Join(tmp, "cairn-dev")}
	s := StartCairn(t, cfg)
	rw := DocRewriter{Ports: map[int]int{4001: cfg.Port}, Tmp: tmp}
	file := filepath.Join(scratch, "main.go")
	if err := os.WriteFile(file, []byte(rw.Rewrite(prog)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Built from the module root, so that the program's imports resolve
	// through this module's go.mod, as they would in a reader's module
	// that requires the same versions.
	bin := filepath.Join(scratch, "prog")
	build := exec.CommandContext(ctx, gobin, "build", "-o", bin, file)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the documented program: %v\n%s\n--- the program, rewritten ---\n%s", err, out, numbered(file))
	}
	out, err := exec.CommandContext(ctx, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("the documented program failed against %s: %v\n%s", s.URL, err, out)
	}
	t.Logf("output:\n%s", out)
	if want != "" && string(out) != want {
		t.Fatalf("the documented program printed\n%s\nwant (the text block after it)\n%s", out, want)
	}
}
