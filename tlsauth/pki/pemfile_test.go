package pki_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

func TestKeyFileModeRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not enforced on Windows")
	}
	ca := tlstest.NewCA(t)
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode  os.FileMode
		shown string // mode in the error message; "" means accepted
	}{
		{0o600, ""},
		{0o400, ""},
		{0o644, "0644"},
		{0o640, "0640"},
		{0o604, "0604"},
		{0o660, "0660"},
		{0o601, "0601"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.key")
			tlstest.WritePEM(t, path, "PRIVATE KEY", der, tt.mode)
			_, err := pki.ReadKeyFile(path)
			if tt.shown == "" {
				if err != nil {
					t.Fatalf("mode %04o refused: %v", tt.mode, err)
				}
				return
			}
			if !errors.Is(err, pki.ErrKeyFileMode) {
				t.Fatalf("err = %v, want ErrKeyFileMode", err)
			}
			want := "tlsauth: key file " + path + " has mode " + tt.shown + "; run \"chmod 600 " + path + "\""
			if err.Error() != want {
				t.Errorf("message\n got %s\nwant %s", err, want)
			}
		})
	}
}

func TestParseKeyFormats(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024) // size is irrelevant to parsing
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	ecParams := block("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	tests := []struct {
		name string
		pem  []byte
		want error // nil: parses
	}{
		{"RSA PKCS#1", block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), nil},
		{"RSA PKCS#8", block("PRIVATE KEY", pkcs8(rsaKey)), nil},
		{"EC SEC1", block("EC PRIVATE KEY", sec1), nil},
		{"EC SEC1 after EC PARAMETERS (openssl ecparam -genkey)", append(ecParams, block("EC PRIVATE KEY", sec1)...), nil},
		{"EC PKCS#8", block("PRIVATE KEY", pkcs8(ecKey)), nil},
		{"Ed25519 PKCS#8", block("PRIVATE KEY", pkcs8(edKey)), nil},
		{"PKCS#1 under a PKCS#8 label", block("PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), nil},
		{"encrypted PKCS#8", block("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), pki.ErrEncryptedKey},
		{"legacy encrypted", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), pki.ErrEncryptedKey},
		{"certificate only", block("CERTIFICATE", []byte{1}), pki.ErrNoPrivateKey},
		{"not PEM", []byte("hello"), pki.ErrNoPrivateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := pki.ParseKeyPEM(tt.pem)
			if tt.want == nil {
				if err != nil || k == nil {
					t.Fatalf("parseKeyPEM: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := pki.ParseKeyPEM(block("EC PRIVATE KEY", []byte{1, 2, 3})); err == nil {
		t.Error("garbage EC key parsed")
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.key")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFileAtomic(path, []byte("new"), pki.KeyFileMode); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "new" {
		t.Fatalf("content %q, %v", got, err)
	}
	assertMode(t, path, 0o600)
	assertNoTempFiles(t, dir)

	if err := pki.WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), pki.KeyFileMode); err == nil || !strings.HasPrefix(err.Error(), "tlsauth: write ") {
		t.Errorf("write into a missing directory: %v", err)
	}
}

func TestFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.crt")
	if err := os.WriteFile(path, make([]byte, pki.MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.ReadCertFile("load CA file", path); !errors.Is(err, pki.ErrFileTooLarge) {
		t.Errorf("err = %v, want ErrFileTooLarge", err)
	}
}
