package main_test

import (
	"path/filepath"
	"strings"
	"testing"

	"pkid/internal/testutil"
)

// TestDamagedStore: serve and the admin commands refuse a store file whose
// freelist page was overwritten, with a line that says so and what to do
// (exit 1), not a Go panic; `cert list` prints no header above it.
func TestDamagedStore(t *testing.T) {
	d, _, _ := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--name", "before")
	testutil.ZeroFreelist(t, filepath.Join(d, "db", "pkid.db"))
	for _, args := range [][]string{{"cert", "list", "--config", cfg}, {"serve", "--config", cfg}} {
		r := pkid(t, nil, args...)
		if r.code != 1 || strings.Contains(r.stderr, "panic") || r.stdout != "" ||
			!strings.Contains(r.stderr, "the file is damaged") || !strings.Contains(r.stderr, "restore the store from a backup") {
			t.Fatalf("pkid %s on a damaged store: %+v", strings.Join(args, " "), r)
		}
	}
}
