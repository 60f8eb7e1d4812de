package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

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
	health string // "; degraded: …", or "" while all is well
	note   string // what the last reload says, if it was refused
	sent   string // the last STATUS sent
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
	n.mu.Unlock()
	n.checkHealth(run)
}

// watchHealth keeps STATUS saying what /healthz says (degraded, halted,
// warnings), looking every interval until ctx ends, so `systemctl status
// pkid` shows a failing store or a pending restart without a request.
func (n *serviceNotifier) watchHealth(ctx context.Context, run *api.Running, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.checkHealth(run)
		}
	}
}

// checkHealth sends READY=1 with the STATUS for run's health now, if it
// differs from the last one sent.
func (n *serviceNotifier) checkHealth(run *api.Running) {
	health := ""
	if run.Health != nil {
		h := run.Health()
		status, _ := h["status"].(string)
		warnings, _ := h["warnings"].([]string)
		if status == "" && len(warnings) > 0 {
			status = "ok"
		}
		switch len(warnings) {
		case 0:
			if status != "" {
				health = "; " + status
			}
		case 1:
			health = "; " + status + ", 1 warning (GET /healthz): " + warnings[0]
		default:
			health = fmt.Sprintf("; %s, %d warnings (GET /healthz), the first: %s", status, len(warnings), warnings[0])
		}
	}
	n.mu.Lock()
	n.health = health
	n.mu.Unlock()
	n.update()
}

// update sends READY=1 with the status, health and note, unless that
// STATUS was the last one sent.
func (n *serviceNotifier) update() {
	n.mu.Lock()
	status := n.status + n.health + n.note
	if status == n.sent {
		n.mu.Unlock()
		return
	}
	n.sent = status
	n.mu.Unlock()
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + strings.ReplaceAll(status, "\n", " "))
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
	n.note = ""
	if err != nil {
		n.note = "; the last reload was refused and the roles in use stay (pkid config check says why)"
	}
	n.sent = "" // systemd waits for READY=1 after RELOADING=1, even with the same STATUS
	n.mu.Unlock()
	n.update()
}

// doing says the process is ready, and what it is doing now (the renew
// daemon: which certificate, and when it renews next or again).
func (n *serviceNotifier) doing(text string) {
	n.mu.Lock()
	n.status = text
	n.mu.Unlock()
	n.update()
}

// stopping is sent as serve begins to drain.
func (n *serviceNotifier) stopping() {
	n.send(daemon.SdNotifyStopping + "\nSTATUS=shutting down: finishing the requests in flight")
}
