//go:build !unix

package api

import (
	"net"

	"pkid/internal/unixsock"
)

// listenPrivate binds a unix socket at path. Without a umask (Windows) the
// socket gets its directory's permissions: pkid serves on Unix systems,
// and builds elsewhere for its client commands.
func listenPrivate(path string) (net.Listener, error) {
	return unixsock.Listen(path)
}
