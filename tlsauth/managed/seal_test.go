package managed

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/tlsauth/pki"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, SealKeySize) }

func sealer(t *testing.T, keys ...[]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw is the stored JSON of certmagic key name.
func raw(t *testing.T, kv *memKV, st *Storage, name string) storedFile {
	t.Helper()
	k, err := st.dataKey(name)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), k, false)
	if err != nil {
		t.Fatal(err)
	}
	var f storedFile
	if err := json.Unmarshal([]byte(e.Value), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// With a storage key, what reaches the replicated store is ciphertext
// bound to its name; it reads back as written.
func TestSealedStorage(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	st := NewStorage(kv, StorageConfig{Sealer: sealer(t, key(1))})
	defer st.Close()
	secret := []byte("-----BEGIN EC PRIVATE KEY-----\nsecret\n-----END EC PRIVATE KEY-----\n")
	name := "certificates/cairn/n1/n1.key"
	if err := st.Store(ctx, name, secret); err != nil {
		t.Fatal(err)
	}
	f := raw(t, kv, st, name)
	if f.Data != nil || f.Sealed == nil || bytes.Contains(f.Sealed, []byte("secret")) {
		t.Fatalf("stored %+v; want only ciphertext", f)
	}
	got, err := st.Load(ctx, name)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Load = %q, %v; want the secret back", got, err)
	}
	if info, err := st.Stat(ctx, name); err != nil || info.Size != int64(len(secret)) {
		t.Errorf("Stat = %+v, %v; want the plaintext size %d", info, err, len(secret))
	}

	// Copied under another name it does not open: the name is bound in.
	other := "certificates/cairn/evil/evil.key"
	k, _ := st.dataKey(other)
	b, _ := json.Marshal(f)
	kv.Set(ctx, k, string(b))
	if _, err := st.Load(ctx, other); !errors.Is(err, ErrNotSealedForKey) {
		t.Errorf("a sealed value moved to another name: %v; want ErrNotSealedForKey", err)
	}

	// Without the key, or with another, it does not open, and says what to do.
	plain := NewStorage(kv, StorageConfig{})
	defer plain.Close()
	if _, err := plain.Load(ctx, name); err == nil || !strings.Contains(err.Error(), "tls.storage_key_file") {
		t.Errorf("Load without the key: %v; want an error naming tls.storage_key_file", err)
	}
	wrong := NewStorage(kv, StorageConfig{Sealer: sealer(t, key(2))})
	defer wrong.Close()
	if _, err := wrong.Load(ctx, name); !errors.Is(err, ErrNotSealedForKey) {
		t.Errorf("Load with another key: %v; want ErrNotSealedForKey", err)
	}
	if f2 := raw(t, kv, st, name); !bytes.Equal(f2.Sealed, f.Sealed) {
		t.Error("a failed open rewrote the file")
	}
}

// Files stored before a key was set, or sealed with an older key, are
// resealed with the first key when read.
func TestResealOnRead(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	name := "acme/ca/users/a@example.com/a.key"
	old := NewStorage(kv, StorageConfig{})
	defer old.Close()
	if err := old.Store(ctx, name, []byte("account key")); err != nil {
		t.Fatal(err)
	}
	st := NewStorage(kv, StorageConfig{Sealer: sealer(t, key(1))})
	defer st.Close()
	if got, err := st.Load(ctx, name); err != nil || string(got) != "account key" {
		t.Fatalf("Load of a plain file = %q, %v", got, err)
	}
	if f := raw(t, kv, st, name); f.Data != nil || f.Sealed == nil {
		t.Fatalf("a plain file read with a key is still plain: %+v", f)
	}
	// Rotation: the new key first, the old one after; reading reseals.
	rot := NewStorage(kv, StorageConfig{Sealer: sealer(t, key(9), key(1))})
	defer rot.Close()
	if got, err := rot.Load(ctx, name); err != nil || string(got) != "account key" {
		t.Fatalf("Load after rotation = %q, %v", got, err)
	}
	only := NewStorage(kv, StorageConfig{Sealer: sealer(t, key(9))})
	defer only.Close()
	if got, err := only.Load(ctx, name); err != nil || string(got) != "account key" {
		t.Fatalf("after the reseal the old key is no longer needed: %q, %v", got, err)
	}
}

func TestLoadSealer(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	k1, k2 := hex.EncodeToString(key(1)), hex.EncodeToString(key(2))
	s, err := LoadSealer(write("two", "# rotated 2026-12\n"+k2+"\n\n"+k1+"\n", 0o600))
	if err != nil || len(s.aeads) != 2 {
		t.Fatalf("LoadSealer = %v, %v; want two keys", s, err)
	}
	for _, tc := range []struct{ name, content string }{
		{"empty", "\n# nothing\n"},
		{"short", "abcd\n"},
		{"not-hex", strings.Repeat("z", 64) + "\n"},
	} {
		if _, err := LoadSealer(write(tc.name, tc.content, 0o600)); err == nil || !strings.Contains(err.Error(), "openssl rand -hex 32") {
			t.Errorf("%s: %v; want an error with the command that makes a key", tc.name, err)
		}
	}
	if _, err := LoadSealer(write("open", k1+"\n", 0o644)); !errors.Is(err, pki.ErrKeyFileMode) {
		t.Errorf("a group-readable key file: %v; want ErrKeyFileMode", err)
	}
}
