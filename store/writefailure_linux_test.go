package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/internal/testutil"
	"pkid/store"
	"pkid/store/storetest"
)

// TestWriteFailureReported: when the file cannot grow (RLIMIT_FSIZE, the
// way a full disk looks to a process: the Go runtime ignores SIGXFSZ, so a
// write past the limit fails with EFBIG), inserts fail, WriteFailure says
// when and why, nothing committed before is lost, and once the file can
// grow again the next commit succeeds and clears the failure — no reopen.
//
// Not parallel: the limit holds for the whole test process while it is set.
func TestWriteFailureReported(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pkid.db")
	b, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kept := storetest.Insert(t, b, "default", 3)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	restore := testutil.LimitFileSize(t, uint64(fi.Size()))

	// Fill what the file already holds (bbolt's free pages and the runway
	// of written zeros past them) until a commit needs the file to grow.
	start := time.Now()
	var failed error
	for i := 0; failed == nil && i < 100; i++ {
		failed = storetest.InsertConcurrently(ctx, b, "default", 256, 1)
	}
	if failed == nil {
		t.Fatal("no insert failed with the file unable to grow")
	}
	// A smaller group may still fit after a large one failed, and a commit
	// that succeeds clears the failure: go on one insert at a time until
	// the last commit made is a failed one.
	for i := 0; ; i++ {
		if err := b.InsertCertificate(ctx, storetest.Record("default")); err != nil {
			break
		}
		if i == 2000 {
			t.Fatal("inserts succeed again with the file unable to grow")
		}
	}
	at, err := b.WriteFailure()
	// bbolt words a failed grow with %s, so the errno is in the text only.
	if err == nil || !strings.Contains(err.Error(), syscall.EFBIG.Error()) || at.Before(start) {
		t.Fatalf("fail/full: WriteFailure() = %v, %v (an insert failed with %v)", at, err, failed)
	}

	restore()
	rec := storetest.Record("default")
	if err := b.InsertCertificate(ctx, rec); err != nil {
		t.Fatalf("ok/room again: insert: %v", err)
	}
	if at, err := b.WriteFailure(); err != nil || !at.IsZero() {
		t.Fatalf("ok/room again: WriteFailure() = %v, %v", at, err)
	}
	for _, s := range append(kept, rec.Serial) {
		if _, err := b.GetCertificate(ctx, s); err != nil {
			t.Fatalf("record %s: %v", s, err)
		}
	}
	if err := b.Check(); err != nil {
		t.Fatalf("bbolt check after the failed commits: %v", err)
	}
}
