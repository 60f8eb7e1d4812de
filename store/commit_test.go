package store

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCommitGroupIsolation: in one shared commit, a write that fails or
// panics gets its own error and leaves nothing behind, while the others in
// its group still commit.
func TestCommitGroupIsolation(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	b.linger = 0
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.write(context.Background(), func(tx *bolt.Tx) error {
				if err := tx.Bucket(bMeta).Put([]byte{'k', byte(i)}, []byte{1}); err != nil {
					return err
				}
				switch i % 3 {
				case 1:
					return boom // after a write: the group must roll back and rerun
				case 2:
					if i == 2 {
						panic("bad write")
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		want := i%3 != 1 && i != 2
		if (err == nil) != want {
			t.Errorf("write %d: %v", i, err)
		}
	}
	b.db.View(func(tx *bolt.Tx) error {
		for i := range errs {
			got := tx.Bucket(bMeta).Get([]byte{'k', byte(i)}) != nil
			if got != (errs[i] == nil) {
				t.Errorf("write %d: committed=%v but error %v", i, got, errs[i])
			}
		}
		return nil
	})
}

// TestSchemaVersion: a store written by a newer pkid is refused, not
// misread; an older one is raised to this version as it opens, so the
// older pkid refuses it once this one may have written records it cannot
// read.
func TestSchemaVersion(t *testing.T) {
	b, path := openTemp(t)
	b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kVersion, []byte("1")) })
	b.Close()
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("ok/older schema: %v", err)
	}
	b.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bMeta).Get(kVersion)); v != strconv.Itoa(SchemaVersion) {
			t.Fatalf("ok/older schema raised to %q, want %d", v, SchemaVersion)
		}
		return nil
	})
	b.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kVersion, []byte("99")) })
	b.Close()
	if _, err := OpenBolt(path); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("fail/newer schema opened: %v", err)
	}
}

// reopenAs makes b's file what an older pkid wrote (bucket absent, schema
// version ver), closes b and opens the file again, which upgrades it.
func reopenAs(t *testing.T, b *Bolt, path string, bucket []byte, ver string) *Bolt {
	t.Helper()
	if err := b.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucket); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kVersion, []byte(ver))
	}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openTemp opens a new store in a temporary directory; the caller closes it.
func openTemp(t testing.TB) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pkid.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, path
}
