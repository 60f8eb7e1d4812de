package store_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"pkid/store"
	"pkid/store/storetest"
)

func openAt(path string) storetest.Opener {
	return func(t *testing.T) store.Store {
		t.Helper()
		s, err := store.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Close()
		})
		return checked{s}
	}
}

// checked runs bbolt's consistency check before every close.
type checked struct{ *store.Bolt }

func (c checked) Close() error {
	if err := c.Check(); err != nil {
		return err
	}
	return c.Bolt.Close()
}

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, openAt(filepath.Join(t.TempDir(), "db", "pkid.db")))
	t.Run("prune certificates", func(t *testing.T) {
		storetest.RunPruneCertificates(t, openAt(filepath.Join(t.TempDir(), "pkid.db")))
	})
}

// TestBoltListScanBudget runs the conformance suite with listings that
// stop after 3 records read: pages come back short or empty with a cursor,
// and every listing still finds what it should by following it.
func TestBoltListScanBudget(t *testing.T) {
	defer store.SetListScanBudget(3)()
	storetest.Run(t, openAt(filepath.Join(t.TempDir(), "pkid.db")))
}

func TestBoltSecondOpenerFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pkid.db")
	s, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := store.OpenBolt(path); err == nil {
		t.Fatal("a second opener got the same file")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("db mode %o", fi.Mode().Perm())
	}
}

// TestBoltSurvivesSIGKILL runs a child that inserts as fast as it can and
// prints each serial once InsertCertificate has returned; after SIGKILL,
// every serial it printed must be in the file.
func TestBoltSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("PKID_STORE_CHILD"); path != "" {
		childInsertLoop(path)
		return
	}
	path := filepath.Join(t.TempDir(), "pkid.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "PKID_STORE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		acked = append(acked, sc.Text())
		if len(acked) == 300 {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("child acknowledged only %d inserts", len(acked))
	}
	s, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("file inconsistent after SIGKILL: %v", err)
	}
	for _, sn := range acked {
		if _, err := s.GetCertificate(context.Background(), sn); err != nil {
			t.Fatalf("acknowledged record %s lost: %v", sn, err)
		}
	}
	t.Logf("%d acknowledged records all present after SIGKILL", len(acked))
}

func childInsertLoop(path string) {
	s, err := store.OpenBolt(path)
	if err != nil {
		os.Exit(3)
	}
	w := bufio.NewWriter(os.Stdout)
	results := make(chan string, 64)
	for range 16 {
		go func() {
			for {
				r := storetest.Record("kill")
				if err := s.InsertCertificate(context.Background(), r); err != nil {
					os.Exit(4)
				}
				results <- r.Serial
			}
		}()
	}
	for sn := range results {
		w.WriteString(sn + "\n")
		w.Flush()
	}
}

func TestBoltACMEConformance(t *testing.T) {
	storetest.RunACME(t, openAt(filepath.Join(t.TempDir(), "pkid.db")))
}
