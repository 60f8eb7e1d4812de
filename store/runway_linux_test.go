package store

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestRunwayRestsAfterFailure: a runway write that fails (the file may not
// grow: RLIMIT_FSIZE, as a full disk) leaves the runway where it was, with
// direct I/O kept, and no write is tried for runwayRetry; after that the
// runway grows again — a disk that got room back needs no restart.
//
// Not parallel: the limit holds for the whole test process while it is set.
func TestRunwayRestsAfterFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pkid.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := openRunway(path)
	if r == nil {
		t.Fatal("no runway")
	}
	defer r.close()
	clock := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	direct := r.direct

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	full := old
	full.Cur = 8 << 10 // bbolt's meta pages; the runway starts past them
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	r.extend(db)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if r.written != 0 || !r.retryAt.Equal(clock.Add(runwayRetry)) || r.direct != direct {
		t.Fatalf("fail/full: written %d, retry at %v, direct %v (was %v)", r.written, r.retryAt, r.direct, direct)
	}

	clock = clock.Add(runwayRetry - time.Second)
	r.extend(db)
	if r.written != 0 {
		t.Fatalf("resting: the runway was written to %d", r.written)
	}

	clock = clock.Add(time.Second)
	r.extend(db)
	if r.written == 0 || !r.retryAt.IsZero() {
		t.Fatalf("ok/room again: written %d, retry at %v", r.written, r.retryAt)
	}
}
