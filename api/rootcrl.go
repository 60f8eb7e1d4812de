package api

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"time"

	"pkid/ca"
)

// RootCRLWatcher serves the root's CRL from its file (written offline by
// `pkid ca root-crl`) and reloads it when the file changes, without a
// restart. A file that does not verify under the root is refused and the
// old CRL kept.
type RootCRLWatcher struct {
	path  string
	root  *x509.Certificate
	clock ca.Clock
	log   *slog.Logger
	// inter is the intermediate that signs; onRevoked is called with why
	// whenever a loaded root CRL lists it (ca.Authority.Halt, which keeps
	// the first).
	inter     *x509.Certificate
	onRevoked func(reason string)

	mu      sync.RWMutex
	der     []byte
	next    time.Time
	this    time.Time
	number  *big.Int
	modTime time.Time
	// refused says why the file, as last changed, is not the CRL served
	// (it does not parse or verify, or its number does not grow): an
	// operator who copied a root CRL in expects it served, so /healthz
	// says so until a good file replaces it.
	refused string
}

// NewRootCRLWatcher loads path once; a missing file is a warning, not an
// error, so a CA made before root CRLs existed still starts.
func NewRootCRLWatcher(path string, root, inter *x509.Certificate, onRevoked func(reason string), clock ca.Clock, log *slog.Logger) *RootCRLWatcher {
	w := &RootCRLWatcher{path: path, root: root, inter: inter, onRevoked: onRevoked, clock: clock, log: log}
	if err := w.Reload(); err != nil {
		log.Warn("root CRL not loaded", "path", path, "err", err)
	}
	return w
}

// Reload reads the file if its modification time changed.
func (w *RootCRLWatcher) Reload() error {
	fi, err := os.Stat(w.path)
	if err != nil {
		return err
	}
	w.mu.RLock()
	same := fi.ModTime().Equal(w.modTime)
	w.mu.RUnlock()
	if same {
		return nil
	}
	raw, err := os.ReadFile(w.path)
	if err != nil {
		return err
	}
	der := raw
	if b, _ := pem.Decode(raw); b != nil {
		der = b.Bytes
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		err = fmt.Errorf("parse root CRL %s: %w", w.path, err)
	} else if serr := rl.CheckSignatureFrom(w.root); serr != nil {
		err = fmt.Errorf("root CRL %s is not signed by the root: %w", w.path, serr)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// CRL numbers (thisUpdate in nanoseconds) order CRLs even when two are
	// signed within one second, which thisUpdate's encoding cannot tell apart.
	if err == nil && w.der != nil && (rl.Number == nil || rl.Number.Cmp(w.number) <= 0) {
		err = fmt.Errorf("root CRL %s (number %s) is not newer than the one served (number %s)", w.path, rl.Number, w.number)
	}
	if err != nil {
		w.modTime, w.refused = fi.ModTime(), err.Error()
		return err
	}
	w.der, w.this, w.next, w.number, w.modTime, w.refused = der, rl.ThisUpdate, rl.NextUpdate, rl.Number, fi.ModTime(), ""
	w.log.Info("root CRL loaded", "number", rl.Number, "next_update", rl.NextUpdate)
	for _, e := range rl.RevokedCertificateEntries {
		if w.inter != nil && w.onRevoked != nil && e.SerialNumber.Cmp(w.inter.SerialNumber) == 0 {
			w.onRevoked(fmt.Sprintf("the intermediate %s is revoked on the root CRL (%s, at %s): nothing it signs would be trusted, so pkid issues nothing; make a new CA hierarchy (pkid init --force keeps the store)",
				ca.SerialString(e.SerialNumber), ca.ReasonName(e.ReasonCode), e.RevocationTime.UTC().Format(time.RFC3339)))
		}
	}
	return nil
}

// Get returns the DER and its thisUpdate (nil if none).
func (w *RootCRLWatcher) Get() ([]byte, time.Time) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.der, w.this
}

// rootCRLWarnBefore is how long before nextUpdate /healthz starts warning:
// a month leaves time to fetch the offline root key.
const rootCRLWarnBefore = 30 * 24 * time.Hour

// Warnings returns health warnings about the root CRL.
func (w *RootCRLWatcher) Warnings() []string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var out []string
	switch {
	case w.refused != "" && w.der != nil:
		out = append(out, fmt.Sprintf("%s; still serving root CRL number %s", w.refused, w.number))
	case w.refused != "":
		out = append(out, w.refused)
	}
	if w.der == nil {
		return append(out, "no root CRL loaded from "+w.path+"; relying parties that check every level (nginx ssl_crl) will refuse clients; run pkid ca root-crl")
	}
	now := w.clock.Now()
	if now.After(w.next) {
		return append(out, fmt.Sprintf("root CRL expired at %s; run pkid ca root-crl where the root key is", w.next.Format(time.RFC3339)))
	}
	if w.next.Sub(now) < rootCRLWarnBefore {
		return append(out, fmt.Sprintf("root CRL expires at %s; run pkid ca root-crl where the root key is", w.next.Format(time.RFC3339)))
	}
	return out
}
