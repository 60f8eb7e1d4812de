// Package unixsock binds and dials Unix sockets whose path may be longer
// than a socket address holds (108 bytes on Linux, 104 on the BSDs): a CA
// directory deep in a volume mount (a Kubernetes pod's, say) puts
// D/pkid.sock past it, and bind fails with "invalid argument".
package unixsock

import (
	"context"
	"net"
	"path/filepath"
)

// maxPath is the longest path a sockaddr_un takes everywhere, its
// terminating NUL left out.
const maxPath = 103

// Listen binds a Unix socket at path. The listener does not remove the
// socket file when closed: its caller does, by path, because the address
// a long path is bound through names no file once the listener is gone.
func Listen(path string) (net.Listener, error) {
	if len(path) <= maxPath {
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		return l, nil
	}
	var l net.Listener
	err := viaDir(path, func(short string) error {
		var err error
		if l, err = net.Listen("unix", short); err == nil {
			l.(*net.UnixListener).SetUnlinkOnClose(false)
		}
		return err
	})
	return l, err
}

// Dial connects to the Unix socket at path.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	if len(path) <= maxPath {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}
	var c net.Conn
	err := viaDir(path, func(short string) error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "unix", short)
		return err
	})
	return c, err
}

// name is the socket's file name, which must fit on its own.
func name(path string) string { return filepath.Base(path) }
