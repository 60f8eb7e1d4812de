package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pkid/ca"
	"pkid/config"
)

func TestKeyFileWarnings(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sealed, err := ca.EncryptKey(key, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	clear, _ := ca.MarshalKey(key)
	for _, tc := range []struct {
		name            string
		key             []byte
		keyMode, pwMode os.FileMode
		want            []string // a part of each warning, in order
	}{
		{"ok/as init writes them", sealed, 0o600, 0o600, nil},
		{"ok/owner read-only", sealed, 0o400, 0o400, nil},
		{"fail/key readable by all", sealed, 0o644, 0o600, []string{"intermediate.key is readable by others than its owner (mode 0644)"}},
		{"fail/passphrase readable by the group", sealed, 0o600, 0o640, []string{"password is readable by others than its owner (mode 0640)"}},
		{"fail/key in the clear", clear, 0o600, 0o600, []string{"intermediate.key holds its key unencrypted (PRIVATE KEY)"}},
		{"fail/both", clear, 0o644, 0o600, []string{"mode 0644", "unencrypted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			kf, pf := filepath.Join(d, "intermediate.key"), filepath.Join(d, "password")
			if err := os.WriteFile(kf, tc.key, tc.keyMode); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pf, []byte("pw\n"), tc.pwMode); err != nil {
				t.Fatal(err)
			}
			got := KeyFileWarnings(kf, pf)
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Fatalf("warning %q, want %q", got[i], w)
				}
			}
		})
	}
}

// TestIntermediateKeyWarnings: for a key in a token, the PIN file and the
// passphrase file are judged by their modes (the PIN holds no PEM to call
// unencrypted); for a key file, the key and its passphrase file.
func TestIntermediateKeyWarnings(t *testing.T) {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "pin"), []byte("4711\n"), 0o644)
	os.WriteFile(filepath.Join(d, "password"), []byte("pw\n"), 0o600)
	cfg := &config.Config{Path: filepath.Join(d, "pkid.yaml"), CA: config.CA{PasswordFile: "password",
		IntermediateKey: "pkcs11:module-path=/m.so;token=t;object=k?pin-source=pin"}}
	if got := IntermediateKeyWarnings(cfg); len(got) != 1 || !strings.Contains(got[0], filepath.Join(d, "pin")+" is readable by others than its owner (mode 0644)") {
		t.Fatalf("token key: %q", got)
	}
	cfg.CA.IntermediateKey = "intermediate.key"
	os.WriteFile(filepath.Join(d, "intermediate.key"), []byte("not PEM"), 0o640)
	if got := IntermediateKeyWarnings(cfg); len(got) != 1 || !strings.Contains(got[0], "intermediate.key is readable by others than its owner (mode 0640)") {
		t.Fatalf("key file: %q", got)
	}
}
