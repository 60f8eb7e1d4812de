package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteFiles: a set is replaced whole, with each file's mode and no
// temporary file left; when any file of the set cannot be written, none is
// replaced (the old certificate and key stay a pair).
func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	key, crt := filepath.Join(dir, "svc.key"), filepath.Join(dir, "svc.crt")
	if err := WriteFiles(File{key, []byte("key 1"), 0o600}, File{crt, []byte("cert 1"), 0o644}); err != nil {
		t.Fatal(err)
	}
	want := func(name string, path, data string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != data {
			t.Fatalf("%s: %s holds %q (%v), want %q", name, filepath.Base(path), b, err, data)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != mode {
			t.Fatalf("%s: %s mode %o, want %o", name, filepath.Base(path), fi.Mode().Perm(), mode)
		}
	}
	want("ok/new", key, "key 1", 0o600)
	want("ok/new", crt, "cert 1", 0o644)

	if err := WriteFiles(File{key, []byte("key 2"), 0o600}, File{crt, []byte("cert 2"), 0o644}); err != nil {
		t.Fatal(err)
	}
	want("ok/replaced", key, "key 2", 0o600)
	want("ok/replaced", crt, "cert 2", 0o644)

	// The certificate's directory is missing: the key must not move either.
	err := WriteFiles(File{key, []byte("key 3"), 0o600}, File{filepath.Join(dir, "gone", "svc.crt"), []byte("cert 3"), 0o644})
	if err == nil {
		t.Fatal("fail/missing directory: no error")
	}
	want("fail/missing directory", key, "key 2", 0o600)

	// The certificate's name is taken by a directory: nothing moves.
	taken := filepath.Join(dir, "taken.crt")
	if err := os.MkdirAll(filepath.Join(taken, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(File{key, []byte("key 4"), 0o600}, File{taken, []byte("cert 4"), 0o644}); err == nil {
		t.Fatal("fail/name taken: no error")
	}
	want("fail/name taken", key, "key 2", 0o600)
	os.RemoveAll(taken)

	// The key is renamed, then the certificate's rename fails (an I/O
	// error, a file system remounted read-only): the old key comes back.
	eio := errors.New("input/output error")
	second := func(from, to string) error {
		if to == crt {
			return eio
		}
		return os.Rename(from, to)
	}
	if err := writeFiles(second, []File{{key, []byte("key 5"), 0o600}, {crt, []byte("cert 5"), 0o644}}); !errors.Is(err, eio) {
		t.Fatalf("fail/second rename: %v", err)
	}
	want("fail/second rename", key, "key 2", 0o600)
	want("fail/second rename", crt, "cert 2", 0o644)
	// A first file that did not exist before is removed again.
	fresh := filepath.Join(dir, "fresh.key")
	if err := writeFiles(second, []File{{fresh, []byte("key 6"), 0o600}, {crt, []byte("cert 6"), 0o644}}); !errors.Is(err, eio) {
		t.Fatalf("fail/second rename of a new key: %v", err)
	}
	if _, err := os.Lstat(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("fail/second rename of a new key: %s left behind (%v)", filepath.Base(fresh), err)
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files left in the directory: %v", names)
	}
}

// TestWriteFile: one file replaced by rename, mode from the start.
func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.pem")
	for _, data := range []string{"one", "two"} {
		if err := WriteFile(path, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != data {
			t.Fatalf("holds %q, want %q", b, data)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	if err := WriteFile(filepath.Join(path, "x"), nil, 0o600); err == nil {
		t.Fatal("fail/parent is a file: no error")
	}
}

// TestWriteFrom: streamed content replaces the file only when the writer
// and the check both succeed; a refusal by either leaves the old file and
// no temporary file behind.
func TestWriteFrom(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := WriteFrom(path, 0o600, write("one"), nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := WriteFrom(path, 0o600, func(w io.Writer) error { io.WriteString(w, "tw"); return boom }, nil); !errors.Is(err, boom) {
		t.Fatalf("fail/writer: %v", err)
	}
	if err := WriteFrom(path, 0o600, write("two"), func(tmp string) error {
		if b, _ := os.ReadFile(tmp); string(b) != "two" {
			t.Errorf("check saw %q", b)
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("fail/check: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("holds %q after refusals, want the old content", b)
	}
	if err := WriteFrom(path, 0o600, write("three"), func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "three" {
		t.Fatalf("holds %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Fatalf("files left in the directory: %v", names)
	}
}

// TestSyncDir: a directory syncs; one that is not there is an error that
// names it, not a silent success.
func TestSyncDir(t *testing.T) {
	d := t.TempDir()
	if err := SyncDir(d); err != nil {
		t.Fatalf("ok/a directory: %v", err)
	}
	gone := filepath.Join(d, "gone")
	if err := SyncDir(gone); err == nil || !strings.Contains(err.Error(), gone) {
		t.Fatalf("fail/no directory: %v", err)
	}
}
