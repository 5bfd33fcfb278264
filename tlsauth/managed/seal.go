package managed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cairnkv/cairn/tlsauth/pki"
)

// SealKeySize is the size of a storage key: AES-256.
const SealKeySize = 32

// sealOverhead is what sealing adds to a file: GCM's nonce and tag.
const sealOverhead = 12 + 16

// Sealer encrypts certmagic's files (private keys, certificates, the ACME
// account) before they enter the replicated store, with keys that never
// do: an operator gives every member the same key file, so raft's log,
// its snapshots and backups hold ciphertext only. It seals with the first
// key and opens with any, so a key can be rotated: add the new key first
// on every member, restart them, then drop the old one once every file has
// been rewritten (a file is resealed with the first key when it is read).
type Sealer struct {
	aeads []cipher.AEAD
}

// NewSealer returns a Sealer for keys (each SealKeySize bytes; the first
// seals).
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("tlsauth: storage key: no key given")
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) != SealKeySize {
			return nil, fmt.Errorf("tlsauth: storage key %d: %d bytes, want %d", i+1, len(k), SealKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		a, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, a)
	}
	return s, nil
}

// LoadSealer reads a storage key file: one key per line, each 64 hex
// digits (`openssl rand -hex 32`), the first sealing; blank lines and
// lines starting with # are skipped. The file must not be readable by
// group or others.
func LoadSealer(path string) (*Sealer, error) {
	var mode os.FileMode
	b, err := pki.ReadFile("read storage key", path, &mode)
	if err != nil {
		return nil, err
	}
	if err := pki.CheckKeyMode(path, mode); err != nil {
		return nil, err
	}
	var keys [][]byte
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := hex.DecodeString(line)
		if err != nil || len(k) != SealKeySize {
			return nil, fmt.Errorf("tlsauth: storage key file %s line %d: want %d hex digits (make one with `openssl rand -hex 32`)", path, n+1, 2*SealKeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("tlsauth: storage key file %s holds no key (make one with `openssl rand -hex 32 > %s`)", path, path)
	}
	return NewSealer(keys)
}

// seal encrypts plain, bound to name (the certmagic key: a sealed value
// copied to another name does not open).
func (s *Sealer) seal(name string, plain []byte) []byte {
	a := s.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return a.Seal(nonce, nonce, plain, []byte(name))
}

// open decrypts a sealed value of name with the first key that opens it;
// first reports whether that was the sealing key.
func (s *Sealer) open(name string, sealed []byte) (plain []byte, first bool, err error) {
	for i, a := range s.aeads {
		if len(sealed) < a.NonceSize() {
			break
		}
		if p, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte(name)); err == nil {
			return p, i == 0, nil
		}
	}
	return nil, false, ErrNotSealedForKey
}

// ErrNotSealedForKey is a sealed file that no key of the storage key file
// opens.
var ErrNotSealedForKey = errors.New("sealed with a storage key that is not in tls.storage_key_file (or damaged)")
