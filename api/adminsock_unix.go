//go:build unix

package api

import (
	"net"
	"syscall"

	"pkid/internal/unixsock"
)

// listenPrivate binds a unix socket at path with mode 0600 from the start
// (umask, not chmod after), so no other local user can connect in between.
func listenPrivate(path string) (net.Listener, error) {
	oldMask := syscall.Umask(0o077)
	defer syscall.Umask(oldMask)
	return unixsock.Listen(path)
}
