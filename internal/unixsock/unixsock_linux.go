package unixsock

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// viaDir runs fn with a short path that names the same file as path:
// /proc/self/fd/N/<name>, N a descriptor of path's directory held open
// until fn returns. The kernel resolves it to the directory itself.
func viaDir(path string, fn func(short string) error) error {
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer unix.Close(fd)
	short := fmt.Sprintf("/proc/self/fd/%d/%s", fd, name(path))
	if len(short) > maxPath {
		return fmt.Errorf("unix socket %s: its name is too long even on its own", path)
	}
	if err := fn(short); err != nil {
		return fmt.Errorf("unix socket %s (through %s): %w", path, short, err)
	}
	return nil
}
