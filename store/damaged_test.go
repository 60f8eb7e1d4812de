package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"pkid/internal/testutil"
	"pkid/store"
)

// TestOpenDamagedStore: a store whose freelist page was overwritten with
// zeros (a disk or a hand that wrote where it should not) is refused with
// an error that says so and what to do, not bbolt's panic.
func TestOpenDamagedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pkid.db")
	b, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.InsertCertificate(context.Background(), &store.CertRecord{Serial: "abc", Role: "damaged", DER: make([]byte, 700)}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	testutil.ZeroFreelist(t, path)
	s, err := store.OpenBolt(path)
	if err == nil {
		s.Close()
		t.Fatal("a store with its freelist zeroed opened")
	}
	if !strings.Contains(err.Error(), "invalid freelist page") || !strings.Contains(err.Error(), "restore the store from a backup") {
		t.Fatalf("damaged store: %v", err)
	}
}
