//go:build unix

package api

import (
	"os"
	"syscall"
)

// SameOwnerAs gives path, a file an admin command made beside the store,
// the owner of dir when it has another: the commands run as root on a
// store that serve, under a user of its own, must go on reading and
// writing.
func SameOwnerAs(path, dir string) error {
	want, err := os.Stat(dir)
	if err != nil {
		return err
	}
	got, err := os.Stat(path)
	if err != nil {
		return err
	}
	w, ok1 := want.Sys().(*syscall.Stat_t)
	g, ok2 := got.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || (w.Uid == g.Uid && w.Gid == g.Gid) {
		return nil
	}
	return os.Chown(path, int(w.Uid), int(w.Gid))
}
