package main

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// activatedListeners takes the listening sockets a service manager passed
// (systemd's socket activation: LISTEN_FDS, named by FileDescriptorName
// in contrib/systemd/pkid.socket and pkid-http.socket): "https" in place
// of `listen`, "http" in place of `http_listen`. systemd holds them
// across a restart of serve, so a client that connects meanwhile waits in
// the backlog instead of being refused, and they may be on a port below
// 1024 without any capability. Either is nil when not passed (serve then
// listens itself); a socket of another name, two of one name or one that
// is not a listening stream socket is an error, before serve starts.
func activatedListeners() (https, plain net.Listener, err error) {
	files := activation.FilesWithNames()
	got := map[string]net.Listener{}
	defer func() {
		for _, fs := range files {
			for _, f := range fs {
				f.Close() // net.FileListener keeps its own copy
			}
		}
		if err != nil {
			for _, l := range got {
				l.Close()
			}
		}
	}()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fs := files[name]
		if name != "https" && name != "http" {
			return nil, nil, fmt.Errorf("socket activation passed a socket named %q: pkid serve takes one named https (for listen) and one named http (for http_listen); set FileDescriptorName= in the .socket unit", name)
		}
		if len(fs) != 1 {
			return nil, nil, fmt.Errorf("socket activation passed %d sockets named %q: pkid serve takes one (one ListenStream= per .socket unit)", len(fs), name)
		}
		l, err := net.FileListener(fs[0])
		if err != nil {
			return nil, nil, fmt.Errorf("socket activation passed %q, which is not a listening stream socket: %w", name, err)
		}
		got[name] = l
		if !strings.HasPrefix(l.Addr().Network(), "tcp") {
			return nil, nil, fmt.Errorf("socket activation passed %q listening on %s %s: pkid serve takes TCP sockets (ListenStream=address:port)", name, l.Addr().Network(), l.Addr())
		}
	}
	return got["https"], got["http"], nil
}
