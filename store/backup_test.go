package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pkid/store"
	"pkid/store/storetest"
)

// TestBackupWhileWriting: a backup taken while certificates are being
// inserted is a store that opens, passes bbolt's consistency check, and
// holds every record committed before the backup began (and only
// complete records); a backup whose context ends stops with an error.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openIn(t, dir)
	before := storetest.Insert(t, s, "default", 200)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var during atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if s.InsertCertificate(ctx, storetest.Record("default")) == nil {
					during.Add(1)
				}
			}
		}()
	}
	// The copy holds its transaction until writes have committed beside
	// it: a small store's copy can otherwise end before any write lands.
	var buf bytes.Buffer
	w := &holdingWriter{w: &buf, until: func() bool { return during.Load() >= 20 }}
	n, err := s.Backup(ctx, w)
	close(stop)
	wg.Wait()
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("backup: %d bytes reported, %d written, %v", n, buf.Len(), err)
	}
	if !w.held {
		t.Fatal("no write ran during the backup; the test proves nothing")
	}
	copyPath := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	certs, err := store.CheckBackup(copyPath)
	if err != nil || certs < len(before) {
		t.Fatalf("the backup fails its check, or holds %d records: %v", certs, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cut.db"), buf.Bytes()[:buf.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CheckBackup(filepath.Join(dir, "cut.db")); err == nil {
		t.Fatal("fail/a backup cut in half passed its check")
	}
	restored, err := store.OpenBolt(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	for _, serial := range before {
		if _, err := restored.GetCertificate(ctx, serial); err != nil {
			t.Fatalf("record %s committed before the backup is missing from it: %v", serial, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Backup(cancelled, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("backup with its context ended: %v", err)
	}
}

// TestCommitsGoOnDuringBackup: while a backup is held open (its writer
// blocks until released), commits that grow the file well past its first
// mapping all complete. bbolt remaps to grow, and a remap waits for every
// read transaction: with bbolt's default mapping the inserts below waited
// for the backup to end (2.6 s in a probe with a slow writer), and here
// would wait until the deadline.
func TestCommitsGoOnDuringBackup(t *testing.T) {
	ctx := context.Background()
	s := openIn(t, t.TempDir())
	release := make(chan struct{})
	held := make(chan struct{})
	backupDone := make(chan error, 1)
	go func() {
		_, err := s.Backup(ctx, blockingWriter{held, release})
		backupDone <- err
	}()
	<-held // the backup's read transaction is open
	inserted := make(chan error, 1)
	go func() {
		// 2,000 records, about 3 MB: several remaps from a new file.
		inserted <- storetest.InsertConcurrently(ctx, s, "default", 8, 250)
	}()
	select {
	case err := <-inserted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		close(release)
		t.Fatal("commits waited for the backup's read transaction")
	}
	close(release)
	if err := <-backupDone; err != nil {
		t.Fatal(err)
	}
}

// blockingWriter signals its first write on held, then blocks until
// release.
type blockingWriter struct{ held, release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) {
	select {
	case <-w.held:
	default:
		close(w.held)
	}
	<-w.release
	return len(p), nil
}

// TestCheckBackupCutAnywhere: a backup cut at any page is refused with an
// error. Pages past the end of a cut file are mapped but not backed, so
// reading one is SIGBUS, which crashed the check (and pkid backup) for
// cuts that ended before the freelist or a bucket's pages.
func TestCheckBackupCutAnywhere(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openIn(t, dir)
	storetest.Insert(t, s, "default", 300)
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	cut := filepath.Join(dir, "cut.db")
	for n := 2 * page; n < buf.Len(); n += page {
		if err := os.WriteFile(cut, buf.Bytes()[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CheckBackup(cut); err == nil {
			t.Fatalf("fail/a backup cut to %d of %d bytes passed its check", n, buf.Len())
		}
	}
	whole := filepath.Join(dir, "whole.db")
	if err := os.WriteFile(whole, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := store.CheckBackup(whole); err != nil || n != 300 {
		t.Fatalf("ok/the whole backup: %d records, %v", n, err)
	}
}

// holdingWriter waits, at its first write, until until() holds (10 s at
// most), then writes through; held says whether until() came true.
type holdingWriter struct {
	w     io.Writer
	until func() bool
	once  sync.Once
	held  bool
}

func (h *holdingWriter) Write(p []byte) (int, error) {
	h.once.Do(func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if h.held = h.until(); h.held {
				return
			}
		}
	})
	return h.w.Write(p)
}

// openIn opens a new store in dir, closed when the test ends.
func openIn(t *testing.T, dir string) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(filepath.Join(dir, "pkid.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
