package unixsock

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLongAndShortPaths: a socket at a path past what a socket address
// holds is bound and dialled like a short one, its file is in the
// directory named, and closing the listener leaves the file for its owner
// to remove.
func TestLongAndShortPaths(t *testing.T) {
	base := t.TempDir()
	deep := filepath.Join(base, strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(base, "s.sock"), filepath.Join(deep, "pkid.sock")} {
		t.Run(map[bool]string{true: "ok/long", false: "ok/short"}[len(path) > maxPath], func(t *testing.T) {
			l, err := Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello"))
				c.Close()
			}()
			c, err := Dial(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(c)
			c.Close()
			if string(got) != "hello" {
				t.Fatalf("read %q", got)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("socket file at %s: %v %v", path, fi, err)
			}
			l.Close()
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("closing the listener removed the file (%v): that is its owner's to do", err)
			}
		})
	}
	if _, err := Dial(context.Background(), filepath.Join(deep, "none.sock")); err == nil {
		t.Fatal("fail/no socket: dialled")
	}
	if _, err := Listen(filepath.Join(base, "missing", strings.Repeat("m", 120), "x.sock")); err == nil {
		t.Fatal("fail/no directory: bound")
	}
}
