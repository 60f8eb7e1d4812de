package main_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pkid/api"
)

// TestBackupRestore: `pkid backup` while a real `pkid serve` is signing
// (through the admin socket) writes a checked copy with mode 0600; after
// the server is SIGKILLed, that copy put in place of the store serves every
// certificate signed before the backup began. With no server running the
// command reads the store directly; --out naming the live store is bad
// usage.
func TestBackupRestore(t *testing.T) {
	d, https, _ := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default"))
	s := serve(t, d, https)
	ctx := context.Background()
	var before []string
	for i := range 5 {
		csr, _ := newCSR(t, fmt.Sprintf("b%d.internal", i))
		serial, err := s.sign(ctx, tok, csr)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, serial)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // issuance goes on during the backup
		defer wg.Done()
		csr, _ := newCSR(t, "during.internal")
		for {
			select {
			case <-stop:
				return
			default:
				s.sign(ctx, tok, csr)
			}
		}
	}()
	out := filepath.Join(t.TempDir(), "pkid-backup.db")
	r := pkid(t, nil, "backup", "--config", cfg, "--out", out)
	close(stop)
	wg.Wait()
	if r.code != 0 || !strings.Contains(r.stderr, "checked") {
		t.Fatalf("ok/backup while serving: exit %d: %s", r.code, r.stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	s.stop(t, syscall.SIGKILL)
	live := filepath.Join(d, "db", "pkid.db")
	if r := pkid(t, nil, "backup", "--config", cfg, "--out", live); r.code != 2 || !strings.Contains(r.stderr, "live store") {
		t.Fatalf("fail/--out is the live store: exit %d: %s", r.code, r.stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(live, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s = serve(t, d, https)
	for _, serial := range before {
		if st := s.recordStatus(t, serial); st != "valid" {
			t.Fatalf("restored record %s: %s", serial, st)
		}
	}
	s.stop(t, syscall.SIGTERM)
	if r := pkid(t, nil, "backup", "--config", cfg, "--out", out); r.code != 0 || !strings.Contains(r.stderr, "checked") {
		t.Fatalf("ok/backup with no server: exit %d: %s", r.code, r.stderr)
	}
}

// TestStoreOpensUnderAddressLimit: the store maps 64 GB of address space
// up front (so a backup never holds commits back); under a ulimit -v too
// small for that it opens with bbolt's default mapping instead of failing.
func TestStoreOpensUnderAddressLimit(t *testing.T) {
	prlimit := needTool(t, "prlimit")
	d, _, _ := initCA(t)
	out := filepath.Join(t.TempDir(), "b.db")
	cmd := exec.Command(prlimit, "--as="+strconv.Itoa(4<<30), pkidBin, "backup", "--config", filepath.Join(d, "pkid.yaml"), "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "checked") {
		t.Fatalf("backup under a 4 GB address limit: %v: %s", err, b)
	}
}

// TestBackupRefusedReplacesNothing: a copy the server says was cut short
// (its trailer), or one that is whole by the trailer but fails the check
// (not a store), is refused with exit 1, and FILE keeps the previous
// backup, with no temporary file left beside it. The admin socket here is
// the test's own, since a real server cannot be made to fail mid-copy on
// demand.
func TestBackupRefusedReplacesNothing(t *testing.T) {
	d, _, _ := initCA(t)
	for _, tc := range []struct{ name, body, trailer, want string }{
		{"fail/cut short", "the first pages", "failed: backup: write: broken pipe", "cut short"},
		{"fail/not a store", "not a bbolt file", "ok 16", "check backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("unix", filepath.Join(d, "pkid.sock"))
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Trailer", api.BackupTrailer)
				io.WriteString(w, tc.body)
				w.Header().Set(api.BackupTrailer, tc.trailer)
			})}
			go hs.Serve(l)
			defer hs.Close()
			outDir := t.TempDir()
			out := filepath.Join(outDir, "pkid-backup.db")
			if err := os.WriteFile(out, []byte("the previous backup"), 0o600); err != nil {
				t.Fatal(err)
			}
			r := pkid(t, nil, "backup", "--config", filepath.Join(d, "pkid.yaml"), "--out", out)
			if r.code != 1 || !strings.Contains(r.stderr, "nothing replaced") || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if b, _ := os.ReadFile(out); string(b) != "the previous backup" {
				t.Fatalf("FILE now holds %q", b)
			}
			if names, _ := os.ReadDir(outDir); len(names) != 1 {
				t.Fatalf("files left beside FILE: %v", names)
			}
		})
	}
}
