package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestOpenCutStore: a store file cut at any page is refused with an error
// that says so, where opening it died of SIGBUS (bbolt maps the missing
// pages, and the first read of one kills the process); the whole file
// still opens, and a locked one still says who may hold it.
func TestOpenCutStore(t *testing.T) {
	ctx := context.Background()
	b, path := openTemp(t)
	for i := range 300 {
		if err := b.InsertCertificate(ctx, &CertRecord{Serial: fmt.Sprintf("%x", 0x1000+i), Role: "cut", DER: make([]byte, 700)}); err != nil {
			t.Fatal(err)
		}
	}
	var size int64
	b.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	b.Close()
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := int64(os.Getpagesize())
	for n := 2 * page; n < size; n += page {
		if err := os.WriteFile(path, whole[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenBolt(path)
		if err == nil {
			s.Close()
			t.Fatalf("fail/a store cut to %d of %d bytes opened", n, size)
		}
		if !errors.Is(err, errCut) || !strings.Contains(err.Error(), fmt.Sprintf("%d of its %d bytes", n, size)) {
			t.Fatalf("fail/cut to %d: %v", n, err)
		}
	}
	if err := os.WriteFile(path, whole, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("ok/the whole file: %v", err)
	}
	defer s.Close()
	if _, err := OpenBolt(path); err == nil || !strings.Contains(err.Error(), "is another pkid using it?") {
		t.Fatalf("fail/second opener: %v", err)
	}
	// Only a held lock suggests another pkid: a path that cannot be
	// opened (here a directory; for a service user, one it may not read)
	// says why and nothing else.
	if _, err := OpenBolt(t.TempDir()); err == nil || strings.Contains(err.Error(), "another pkid") {
		t.Fatalf("fail/not a file: %v", err)
	}
}
