// Package testutil loads the fixtures in certs/testdata (pre-made CAs and
// keys, so tests never pay for key generation or more than one PBKDF2
// decryption per key) and lints certificates with zlint.
package testutil

import (
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"go.step.sm/crypto/pemutil"

	"pkid/ca"
)

// KeyTypes lists the key types with fixtures.
var KeyTypes = []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"}

// FixtureDir is the absolute path of certs/testdata.
func FixtureDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "certs", "testdata")
}

// TestCA is a fixture CA.
type TestCA struct {
	Root, Intermediate *x509.Certificate
	Signer             crypto.Signer
	Dir                string
}

var (
	mu      sync.Mutex
	cas     = map[string]*TestCA{}
	leaves  = map[string]crypto.Signer{}
	rootKey = map[string]crypto.Signer{}
)

// CA returns the fixture CA of keyType, decrypting its key once per process.
func CA(t testing.TB, keyType string) *TestCA {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if c := cas[keyType]; c != nil {
		return c
	}
	d := filepath.Join(FixtureDir(), "ca-"+keyType)
	root, err := ca.LoadCertificate(filepath.Join(d, "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	inter, err := ca.LoadCertificate(filepath.Join(d, "intermediate.crt"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ca.LoadKey(filepath.Join(d, "intermediate.key"), filepath.Join(FixtureDir(), "password"))
	if err != nil {
		t.Fatal(err)
	}
	c := &TestCA{Root: root, Intermediate: inter, Signer: s, Dir: d}
	cas[keyType] = c
	return c
}

// RootKey returns the fixture root key of keyType.
func RootKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if k := rootKey[keyType]; k != nil {
		return k
	}
	k, err := ca.LoadKey(filepath.Join(FixtureDir(), "ca-"+keyType, "root.key"), filepath.Join(FixtureDir(), "password"))
	if err != nil {
		t.Fatal(err)
	}
	rootKey[keyType] = k
	return k
}

// LeafKey returns the pre-generated leaf key of keyType.
func LeafKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if k := leaves[keyType]; k != nil {
		return k
	}
	raw, err := os.ReadFile(filepath.Join(FixtureDir(), "leaf-"+keyType+".key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := pemutil.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	leaves[keyType] = k.(crypto.Signer)
	return leaves[keyType]
}
