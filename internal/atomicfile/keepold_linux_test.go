package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestKeepOldCopies: where the old file cannot get a second name by a hard
// link (here: across file systems), it is kept as a copy beside itself,
// with its mode.
func TestKeepOldCopies(t *testing.T) {
	dir := t.TempDir()
	other, err := os.MkdirTemp("/dev/shm", "atomicfile")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(other)
	a, _ := os.Stat(dir)
	b, _ := os.Stat(other)
	if a.Sys().(*syscall.Stat_t).Dev == b.Sys().(*syscall.Stat_t).Dev {
		t.Skip("/dev/shm is on the same file system here")
	}
	path := filepath.Join(dir, "svc.key")
	if err := os.WriteFile(path, []byte("key 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := keepOld(path, filepath.Join(other, "svc.key.old"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(old) != dir {
		t.Fatalf("copy at %s, want it beside %s", old, path)
	}
	if data, _ := os.ReadFile(old); string(data) != "key 1" {
		t.Fatalf("copy holds %q", data)
	}
	if fi, _ := os.Stat(old); fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy mode %o", fi.Mode().Perm())
	}
	if old, err := keepOld(filepath.Join(dir, "none"), filepath.Join(dir, "none.old")); old != "" || err != nil {
		t.Fatalf("no file: %q %v", old, err)
	}
}
