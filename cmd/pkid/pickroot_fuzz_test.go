package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPickRoot feeds pickRoot the bundle a not-yet-trusted server answers
// `pkid ca bootstrap` with: whatever the bytes, it never panics and returns
// only a certificate whose SHA-256 is the fingerprint asked for. The first
// seed, a real bundle, must give the root.
func FuzzPickRoot(f *testing.F) {
	dir := filepath.Join("..", "..", "certs", "testdata", "ca-ec-p256")
	root, err := os.ReadFile(filepath.Join(dir, "root.crt"))
	if err != nil {
		f.Fatal(err)
	}
	inter, _ := os.ReadFile(filepath.Join(dir, "intermediate.crt"))
	b, _ := pem.Decode(root)
	sum := sha256.Sum256(b.Bytes)
	want := hex.EncodeToString(sum[:])
	bundle := append(append([]byte{}, inter...), root...)
	if c, err := pickRoot(bundle, want); err != nil || sha256.Sum256(c.Raw) != sum {
		f.Fatalf("the fixture root is not found in its own bundle: %v", err)
	}
	f.Add(bundle)
	f.Add(inter)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, bundle []byte) {
		c, err := pickRoot(bundle, want)
		if err != nil {
			return
		}
		if got := sha256.Sum256(c.Raw); got != sum {
			t.Fatalf("picked a certificate with SHA-256 %x, want %s", got, want)
		}
	})
}
