package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"go.step.sm/crypto/pemutil"

	"pkid/ca"
	"pkid/config"
)

// PendingChanges notices, on serve's timer, what the files serve read at
// start now say that serve has not applied: pkid.yaml, whose roles reload
// on SIGHUP and whose other settings wait for a restart, and the
// intermediate certificate, which a rotation replaces and a restart
// loads. Each is a /healthz warning for as long as it holds, and a log
// line when it appears, so an operator who rotated the intermediate and
// sent SIGHUP, or edited a setting that needs a restart, or left
// pkid.yaml broken for the next start, is told so by the CA rather than
// finding out later that nothing changed.
type PendingChanges struct {
	started *config.Config
	a       *ca.Authority
	log     *slog.Logger

	mu       sync.Mutex
	yaml     []byte // pkid.yaml as last compared
	cert     []byte // the intermediate's file as last compared
	stale    bool   // compare again even if the files are unchanged
	warnings []string
}

// NewPendingChanges watches the files of started, the config serve runs
// on, against a, its authority. It reads nothing until Check.
func NewPendingChanges(started *config.Config, a *ca.Authority, log *slog.Logger) *PendingChanges {
	return &PendingChanges{started: started, a: a, log: log, stale: true}
}

// Reloaded says that the roles in use changed (SIGHUP): the next Check
// compares again.
func (p *PendingChanges) Reloaded() {
	p.mu.Lock()
	p.stale = true
	p.mu.Unlock()
}

// Warnings are the changes not applied, as /healthz shows them.
func (p *PendingChanges) Warnings() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.warnings)
}

// Check reads pkid.yaml and the intermediate's file, and compares them
// with what serve runs on when either changed since it last did: two
// small reads on each tick, a parse only after a change.
func (p *PendingChanges) Check() {
	certPath := p.started.Resolve(p.started.CA.IntermediateCert)
	yaml, yerr := os.ReadFile(p.started.Path)
	cert, cerr := os.ReadFile(certPath)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stale && yerr == nil && cerr == nil && bytes.Equal(yaml, p.yaml) && bytes.Equal(cert, p.cert) {
		return
	}
	p.yaml, p.cert, p.stale = yaml, cert, false
	var w []string
	switch cfg, err := config.Parse(p.started.Path, yaml); {
	case yerr != nil:
		w = append(w, "pkid.yaml cannot be read: the next start will fail; serve goes on with the settings it loaded")
		p.logOnce(w[len(w)-1], "err", yerr)
	case err != nil:
		w = append(w, "pkid.yaml does not load (pkid config check says why): the next start will fail; serve goes on with the settings it loaded")
		p.logOnce(w[len(w)-1], "err", err)
	default:
		if added, removed, changed := roleChanges(p.a.Roles(), cfg.Roles); len(added)+len(removed)+len(changed) > 0 {
			w = append(w, fmt.Sprintf("pkid.yaml's roles differ from those in use (added %s, removed %s, changed %s): reload serve (SIGHUP, systemctl reload) to apply them", list(added), list(removed), list(changed)))
			p.logOnce(w[len(w)-1])
		}
		if keys := changedOutsideRoles(p.started, cfg); len(keys) > 0 {
			w = append(w, fmt.Sprintf("pkid.yaml's %s changed since serve started: a restart applies them", strings.Join(keys, ", ")))
			p.logOnce(w[len(w)-1])
		}
	}
	if why := p.intermediateChanged(cert, cerr); why != "" {
		w = append(w, why)
		p.logOnce(why, "file", certPath)
	}
	p.warnings = w
}

// intermediateChanged says how the intermediate's file (raw, as read)
// differs from the intermediate serve issues from, or "".
func (p *PendingChanges) intermediateChanged(raw []byte, readErr error) string {
	inUse := p.a.Intermediate()
	if readErr != nil {
		return "the intermediate certificate's file cannot be read: the next start will fail; serve goes on issuing from the one it loaded"
	}
	c, err := pemutil.ParseCertificate(raw)
	switch {
	case err != nil:
		return "the intermediate certificate's file does not parse: the next start will fail; serve goes on issuing from the one it loaded"
	case !c.Equal(inUse):
		return fmt.Sprintf("the intermediate certificate's file holds %q (issuer %x), not the one serve issues from, %q (issuer %s): restart serve to issue from it (a reload does not)",
			c.Subject.CommonName, c.SubjectKeyId, inUse.Subject.CommonName, p.a.IssuerID())
	}
	return ""
}

// logOnce logs a warning that was not among the last Check's.
func (p *PendingChanges) logOnce(msg string, args ...any) {
	if !slices.Contains(p.warnings, msg) {
		p.log.Warn(msg, args...)
	}
}

// list is names for a message: "[a, b]", "none".
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return "[" + strings.Join(names, ", ") + "]"
}
