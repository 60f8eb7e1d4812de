package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"

	"pkid/config"
	"pkid/internal/unixsock"
)

// listenAdmin binds the admin socket and returns it with the function that
// removes it when serve stops. A socket file left by a pkid that was killed
// is replaced; one that a running pkid answers on is not, since removing it
// would cut that server off from its admin commands (a second config beside
// the first, or two configs naming the same admin_socket).
func listenAdmin(ctx context.Context, cfg *config.Config) (net.Listener, func(), error) {
	path := cfg.AdminSocketPath()
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	c, err := unixsock.Dial(dctx, path)
	cancel()
	if err == nil {
		c.Close()
		return nil, nil, fmt.Errorf("admin socket %s: another pkid serve is listening on it (stop that one, or set admin_socket in %s to a different path)", path, cfg.Path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			// A mistyped admin_socket must not cost a file.
			return nil, nil, fmt.Errorf("admin socket %s: a file that is not a socket is there; set admin_socket in %s to another path, or move the file", path, cfg.Path)
		}
		os.Remove(path)
	}
	l, err := listenPrivate(path)
	if err != nil {
		if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("admin socket: %w (set admin_socket in %s to a path in a directory serve may write, e.g. /run/pkid/pkid.sock)", err, cfg.Path)
		}
		return nil, nil, fmt.Errorf("admin socket: %w", err)
	}
	os.Chmod(path, 0o600)
	ours, _ := os.Stat(path)
	remove := func() {
		// Remove only the socket this serve bound: if another one has
		// since taken the path over, it is that server's.
		if now, err := os.Stat(path); err == nil && ours != nil && os.SameFile(ours, now) {
			os.Remove(path)
		}
	}
	return l, remove, nil
}
