package main

import (
	"log/slog"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/daemon"

	"pkid/api"
)

// serviceNotifier tells a service manager how serve (or the renew daemon)
// is doing, by systemd's notify protocol (a unit with Type=notify or
// notify-reload): ready once every listener accepts, so that units
// ordered after pkid start when it answers, not when its process exists
// (after a restore, putting a long CRL's revocations back comes first);
// reloading until the roles are applied, so `systemctl reload` returns
// after them; stopping as it drains. STATUS is what `systemctl status`
// shows. Without NOTIFY_SOCKET in the environment nothing is sent.
type serviceNotifier struct {
	log    *slog.Logger
	mu     sync.Mutex
	status string // "serving …", once ready
}

// send passes state on; a failure is a warning only, as serve works the
// same without a service manager.
func (n *serviceNotifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("service manager not told", "state", strings.SplitN(state, "\n", 2)[0], "err", err)
	}
}

// ready is serve's Ready hook.
func (n *serviceNotifier) ready(run *api.Running) {
	n.mu.Lock()
	n.status = "serving https://" + run.HTTPSAddr + " and http://" + run.HTTPAddr + ", issuing from " + run.CA.IssuerID()
	status := n.status
	n.mu.Unlock()
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// reloading is sent as a SIGHUP is taken; the monotonic time is what
// Type=notify-reload requires with it.
func (n *serviceNotifier) reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=reloading the roles")
}

// reloaded is serve's Reloaded hook. A refused reload leaves serve
// running on the roles it had, so it is ready again either way; the
// status says which (the reason, which may quote pkid.yaml, stays in the
// log).
func (n *serviceNotifier) reloaded(err error) {
	n.mu.Lock()
	status := n.status
	n.mu.Unlock()
	if err != nil {
		status += "; the last reload was refused and the roles in use stay (pkid config check says why)"
	}
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// doing says the process is ready, and what it is doing now (the renew
// daemon: which certificate, and when it renews next or again).
func (n *serviceNotifier) doing(text string) {
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + strings.ReplaceAll(text, "\n", " "))
}

// stopping is sent as serve begins to drain.
func (n *serviceNotifier) stopping() {
	n.send(daemon.SdNotifyStopping + "\nSTATUS=shutting down: finishing the requests in flight")
}
