package tlsconf

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchOptions tunes Watch. The zero value is the default.
type WatchOptions struct {
	// Debounce is how long the files must be quiet after a change before
	// they are read (default 200ms): writing a CA bundle, a certificate
	// and a key is several events, and reading between them would see a
	// half-rotated set (which is refused, then accepted at the next event,
	// but logs a needless error).
	Debounce time.Duration
	// MaxDelay bounds the wait when changes keep coming (default 2s).
	MaxDelay time.Duration
}

// Watch calls Check whenever a file of r's materials may have changed,
// until ctx ends; then it returns nil. It returns an error at once if the
// directories cannot be watched (SIGHUP still works then).
//
// It watches directories, not files, so that every way of replacing a file
// is seen: writing it in place, renaming a new file over it (the atomic
// write of cairn, cert-manager and most tools), and the symbolic-link swap
// of Kubernetes secret and ConfigMap volumes (where ca.crt is a link to
// ..data/ca.crt and ..data is re-pointed at a new directory). For a file
// that is a symbolic link, the directory of its target is watched too, and
// the set of watched directories is refreshed after every check and every
// reload. A directory replaced as a whole (renamed away, another renamed
// into its place) is not seen: send SIGHUP after such a swap. Events are
// debounced, and Check reads the files' content, so a change that
// leaves the content as loaded does nothing.
func (r *Reloader) Watch(ctx context.Context, o WatchOptions) error {
	if o.Debounce <= 0 {
		o.Debounce = 200 * time.Millisecond
	}
	if o.MaxDelay < o.Debounce {
		o.MaxDelay = max(2*time.Second, o.Debounce)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("tlsauth: watch TLS files: %w", err)
	}
	defer w.Close()
	t := &watchTargets{w: w, dirs: make(map[string]bool)}
	if err := t.refresh(r.files()); err != nil {
		return err
	}
	if len(t.dirs) == 0 {
		return errNoMaterial
	}
	// Files may have changed between loading and watching.
	r.Check("file change")

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // of the pending change; zero if none
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !t.relevant(ev.Name) {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			timer.Reset(min(o.Debounce, max(0, first.Add(o.MaxDelay).Sub(now))))
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events: look at the files anyway.
			r.log.Warn("tlsauth: watching TLS files", "err", err)
			if first.IsZero() {
				first = time.Now()
			}
			timer.Reset(o.Debounce)
		case <-timer.C:
			first = time.Time{}
			r.Check("file change")
			t.refreshOrWarn(r)
		case <-r.reloaded:
			// A reload (SIGHUP after a directory was replaced as a whole,
			// say) may have followed files into directories not watched.
			t.refreshOrWarn(r)
		}
	}
}

// watchTargets are the directories watched and the names in them that
// matter.
type watchTargets struct {
	w     *fsnotify.Watcher
	dirs  map[string]bool
	names map[string]bool // base names of the files and of their link targets
}

// refresh watches the directory of every file and of its link target.
// Directories that went away are dropped by fsnotify itself.
func (t *watchTargets) refresh(files []string) error {
	t.names = make(map[string]bool)
	for _, f := range files {
		paths := []string{f}
		if real, err := filepath.EvalSymlinks(f); err == nil && real != f {
			paths = append(paths, real)
		}
		for _, p := range paths {
			abs, err := filepath.Abs(p)
			if err != nil {
				return fmt.Errorf("tlsauth: watch %s: %w", p, err)
			}
			t.names[filepath.Base(abs)] = true
			dir := filepath.Dir(abs)
			// Add again even if watched: the path may now be another
			// directory (the old one renamed away). Adding a directory
			// already watched changes nothing.
			if err := t.w.Add(dir); err != nil {
				if p == f {
					return fmt.Errorf("tlsauth: watch directory %s of %s: %w", dir, f, err)
				}
				continue // a link target's directory may be short-lived
			}
			t.dirs[dir] = true
		}
	}
	return nil
}

func (t *watchTargets) refreshOrWarn(r *Reloader) {
	if err := t.refresh(r.files()); err != nil {
		r.log.Warn("tlsauth: watching TLS files", "err", err)
	}
}

// relevant reports whether an event on path may concern a watched file:
// the file itself (written, created by a rename, removed, its mode
// changed), or a Kubernetes-style "..data" link or "..<timestamp>"
// directory being swapped.
func (t *watchTargets) relevant(path string) bool {
	base := filepath.Base(path)
	return t.names[base] || strings.HasPrefix(base, "..")
}
