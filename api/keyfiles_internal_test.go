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
