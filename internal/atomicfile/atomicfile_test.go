package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
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
