package pki

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxPasswordFile bounds a password file.
const maxPasswordFile = 4 << 10

// ReadPasswordFile returns the first line of path (without its line end),
// as the password of a PKCS#12 bundle.
func ReadPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("password file %s: %w", path, err)
	}
	if len(data) > maxPasswordFile {
		return "", fmt.Errorf("password file %s: more than %d bytes", path, maxPasswordFile)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r"))), nil
}

// existingFiles returns those of paths that exist (as anything, a dangling
// symbolic link included).
func existingFiles(paths ...string) ([]string, error) {
	var found []string
	for _, p := range paths {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			found = append(found, p)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return found, nil
}

// alreadyExistMsg says that the files found exist.
func alreadyExistMsg(found []string) string {
	if len(found) == 1 {
		return found[0] + " already exists"
	}
	return strings.Join(found[:len(found)-1], ", ") + " and " + found[len(found)-1] + " already exist"
}

// sameFile reports whether a and b name the same file: the same absolute
// path, or the same existing file.
func sameFile(a, b string) bool {
	aa, errA := filepath.Abs(a)
	bb, errB := filepath.Abs(b)
	if errA == nil && errB == nil && aa == bb {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

func labelWidth(s ...string) int {
	n := 0
	for _, x := range s {
		n = max(n, len(x))
	}
	return n
}

// shellQuote quotes s for a POSIX shell when it needs it, so that printed
// commands can be pasted.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
