package servertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Data dirs kept as test fixtures (testdata/datadir-*.tar.gz) are gzipped
// tar files. A raft-wal segment is preallocated (64 MiB of mostly zeros),
// so the archive holds each regular file without its trailing zeros and
// its full size in the PAX record fullSizeKey; ExtractDataDir extends it
// back. Everything else is stored as is.
const fullSizeKey = "CAIRN.fullsize"

// ArchiveDataDir writes the data dir dir to w as a gzipped tar, its paths
// relative to dir, in walk (lexical) order with fixed times and owners,
// so that the same files give the same archive.
func ArchiveDataDir(dir string, w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
			return tw.WriteHeader(h)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("servertest: %s is not a regular file or a dir", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		trimmed := bytes.TrimRight(b, "\x00")
		h.Typeflag, h.Size = tar.TypeReg, int64(len(trimmed))
		if len(trimmed) != len(b) {
			h.PAXRecords = map[string]string{fullSizeKey: strconv.Itoa(len(b))}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(trimmed)
		return err
	})
	if err != nil {
		return fmt.Errorf("servertest: archive %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// ExtractDataDir unpacks an archive written by ArchiveDataDir into dst
// (made 0700), restoring each file's size and mode.
func ExtractDataDir(t testing.TB, archive, dst string) {
	t.Helper()
	if err := extractDataDir(archive, dst); err != nil {
		t.Fatalf("servertest: extract %s: %v", archive, err)
	}
}

func extractDataDir(archive, dst string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(strings.TrimSuffix(h.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("entry %q leaves the data dir", h.Name)
		}
		p := filepath.Join(dst, name)
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, mode); err != nil {
				return err
			}
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("entry %q: unexpected type %q", h.Name, h.Typeflag)
		}
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if s, ok := h.PAXRecords[fullSizeKey]; ok && err == nil {
			var n int64
			if n, err = strconv.ParseInt(s, 10, 64); err == nil {
				err = out.Truncate(n)
			}
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
	}
}
