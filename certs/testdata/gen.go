//go:build ignore

// gen writes the test fixtures: a CA per key type (root + intermediate,
// keys encrypted with the password in "password") and a leaf key per key
// type, so tests never pay for RSA generation. Run: go run ./certs/testdata/gen.go
package main

import (
	"os"
	"path/filepath"
	"time"

	"pkid/ca"
)

var types = []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"}

func main() {
	dir := "certs/testdata"
	pw := []byte("pkid-test-password")
	must(os.WriteFile(filepath.Join(dir, "password"), pw, 0o600))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, kt := range types {
		d := filepath.Join(dir, "ca-"+kt)
		must(os.MkdirAll(d, 0o755))
		h, err := ca.CreateHierarchy(ca.HierarchyOptions{Name: "Test " + kt, KeyType: kt, Now: now, RootValidity: 30 * 365 * 24 * time.Hour, IntermediateValidity: 20 * 365 * 24 * time.Hour})
		must(err)
		must(os.WriteFile(filepath.Join(d, "root.crt"), ca.PEMCert(h.Root.Raw), 0o644))
		must(os.WriteFile(filepath.Join(d, "intermediate.crt"), ca.PEMCert(h.Intermediate.Raw), 0o644))
		rk, err := ca.EncryptKey(h.RootKey, pw)
		must(err)
		must(os.WriteFile(filepath.Join(d, "root.key"), rk, 0o600))
		ik, err := ca.EncryptKey(h.IntermediateKey, pw)
		must(err)
		must(os.WriteFile(filepath.Join(d, "intermediate.key"), ik, 0o600))
		leaf, err := ca.GenerateKey(kt)
		must(err)
		lk, err := ca.MarshalKey(leaf)
		must(err)
		must(os.WriteFile(filepath.Join(dir, "leaf-"+kt+".key"), lk, 0o600))
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
