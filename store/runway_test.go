package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestRunway: past the last page bbolt uses, the file holds written
// (allocated, not sparse) zeros; bbolt's own pages are untouched by them —
// its consistency check passes, and every record reads back after a
// reopen.
func TestRunway(t *testing.T) {
	b, path := openTemp(t)
	if b.runway == nil {
		t.Fatal("no runway")
	}
	t.Logf("direct I/O: %v", b.runway.direct)
	// Records from 32 writers, big enough to make bbolt grow its file
	// several times while the runway is written between commits.
	const n = 3000
	val := bytes.Repeat([]byte{0xa5}, 1500)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				err := b.write(context.Background(), func(tx *bolt.Tx) error {
					return tx.Bucket(bMeta).Put(fmt.Appendf(nil, "r%05d", i), val)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Close first: the loop may still be extending after the last answer.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db := reopenChecked(t, path)
	var used int64
	db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	if b.runway.written < used+runwayAhead {
		t.Errorf("runway written to %d, bbolt uses %d: want %d ahead", b.runway.written, used, runwayAhead)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	// st_blocks counts 512-byte blocks actually allocated: a sparse tail
	// would leave the allocation near `used`.
	if alloc := st.Blocks * 512; alloc < used+runwayAhead-runwayStep {
		t.Errorf("%d bytes allocated, bbolt uses %d: the runway is sparse", alloc, used)
	}
	err := db.View(func(tx *bolt.Tx) error {
		for i := range n {
			if v := tx.Bucket(bMeta).Get(fmt.Appendf(nil, "r%05d", i)); !bytes.Equal(v, val) {
				return fmt.Errorf("record %d: %d bytes", i, len(v))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRunwayAndDirectWrites: writes that bypass the commit loop (OpenBolt's
// upgrades, tests) while the loop extends the runway keep every page they
// commit: the runway waits for bbolt's writer lock, so it never zeroes a
// page a commit has just allocated past the old end (the freelist, say),
// and the file opens and checks clean.
func TestRunwayAndDirectWrites(t *testing.T) {
	b, path := openTemp(t)
	val := bytes.Repeat([]byte{0x5a}, 3000)
	const n = 300
	for i := range n {
		// Through the loop (which then extends the runway), then at once
		// straight to bbolt, growing the file past where it ended.
		if err := b.write(context.Background(), func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Put(fmt.Appendf(nil, "loop%04d", i), val)
		}); err != nil {
			t.Fatal(err)
		}
		if err := b.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Put(fmt.Appendf(nil, "direct%04d", i), val)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db := reopenChecked(t, path)
	err := db.View(func(tx *bolt.Tx) error {
		for i := range n {
			for _, k := range []string{"loop", "direct"} {
				if v := tx.Bucket(bMeta).Get(fmt.Appendf(nil, "%s%04d", k, i)); !bytes.Equal(v, val) {
					return fmt.Errorf("record %s%04d: %d bytes", k, i, len(v))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// reopenChecked opens the closed store at path read-only, runs bbolt's
// consistency check on it, and returns it open for the caller to read.
func reopenChecked(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestRunwayRestsOnError: a runway that cannot be written (here: a
// read-only file handle) rests quietly (TestRunwayRestsAfterFailure: for
// runwayRetry) and the store works as before.
func TestRunwayRestsOnError(t *testing.T) {
	b, path := openTemp(t)
	defer b.Close()
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b.runway.f.Close()
	b.runway.f, b.runway.direct = ro, false
	for i := range 50 {
		err := b.write(context.Background(), func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Put(fmt.Appendf(nil, "k%d", i), []byte("v"))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if b.runway.retryAt.IsZero() {
		t.Error("writing to a read-only handle did not rest the runway")
	}
}

// TestRunwayDirectFallsBack: a direct write the filesystem refuses (here:
// a buffer off the alignment O_DIRECT needs) is retried buffered, and the
// runway goes on.
func TestRunwayDirectFallsBack(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	if !b.runway.direct {
		t.Skip("this filesystem has no O_DIRECT")
	}
	z := make([]byte, runwayStep+1)
	b.runway.zeros = z[1:] // misaligned: EINVAL for a direct write
	if err := b.write(context.Background(), func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if b.runway.direct || !b.runway.retryAt.IsZero() || b.runway.written == 0 {
		t.Fatalf("direct %v retry at %v written %d", b.runway.direct, b.runway.retryAt, b.runway.written)
	}
}
