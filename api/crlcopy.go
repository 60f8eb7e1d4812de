package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"pkid/ca"
	"pkid/config"
	"pkid/internal/atomicfile"
	"pkid/store"
)

// CRLCopyPath is where serve keeps a copy of issuer's latest CRL, beside
// the store but outside it: a store restored from a backup (copied over
// the store file alone) is older than the copy, which serve then puts
// back (ReapplyCRLCopies).
func CRLCopyPath(cfg *config.Config, issuer string) string {
	return filepath.Join(CRLCopyDir(cfg), issuer+".crl")
}

// CRLCopyDir is the directory of the CRL copies (CRLCopyPath).
func CRLCopyDir(cfg *config.Config) string { return filepath.Join(StoreDir(cfg), "crl-copies") }

// keepCRLCopy is a CRLPublisher.Published hook: it writes each CRL to its
// copy, atomically. A copy that cannot be written is a warning, never a
// failure: the CRL is stored and served either way.
func keepCRLCopy(cfg *config.Config, log *slog.Logger) func(*store.CRLState) {
	return func(st *store.CRLState) {
		path := CRLCopyPath(cfg, st.Issuer)
		err := os.MkdirAll(filepath.Dir(path), 0o700)
		if err == nil {
			err = atomicfile.WriteFile(path, st.DER, 0o600)
		}
		if err != nil {
			log.Warn("CRL copy not written: a restore from a backup will not put this CRL's revocations back by itself", "issuer", st.Issuer, "number", st.Number, "err", err)
		}
	}
}

// ReapplyCRLCopies runs at start, before the first CRL of the run: for
// each issuer whose CRL copy is numbered above the store's latest CRL,
// the store is older than the last CRL serve published (restored from a
// backup, or replaced), and the copy's revocations go back into it
// (ca.Authority.ReapplyCRL) before a CRL without them is signed. It
// returns what it did, for the log and /healthz, as a restore is worth
// knowing of: the certificates issued since the store's copy was made are
// not in it.
func ReapplyCRLCopies(ctx context.Context, cfg *config.Config, a *ca.Authority, issuers []string, log *slog.Logger) []string {
	var warnings []string
	for _, issuer := range issuers {
		w, err := reapplyCRLCopy(ctx, cfg, a, issuer)
		if err != nil {
			log.Warn("CRL copy not put back", "issuer", issuer, "copy", CRLCopyPath(cfg, issuer), "err", err)
			continue
		}
		if w != "" {
			log.Warn("store older than the last CRL served", "issuer", issuer, "warning", w)
			warnings = append(warnings, w)
		}
	}
	return warnings
}

// reapplyCRLCopy puts back issuer's CRL copy if it is newer than the
// store's CRL, and says what it did ("" when the store is as new).
func reapplyCRLCopy(ctx context.Context, cfg *config.Config, a *ca.Authority, issuer string) (string, error) {
	path := CRLCopyPath(cfg, issuer)
	der, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return "", fmt.Errorf("not a CRL: %w", err)
	}
	cur, err := a.Store().GetCRL(ctx, issuer)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", err
	case rl.Number.Cmp(cur.NumberValue()) <= 0:
		return "", nil
	}
	got, err := a.ReapplyRevocationList(ctx, rl)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("the store is older than CRL %s, the last this CA served (restored from a backup?): %s put back from its copy %s (%d revoked again, %d raised to keyCompromise, %d of the same keys, %d listed with no record); certificates issued since the store's copy was made are not in it (README: Backup and restore)",
		rl.Number, counted(len(got.Revoked)+len(got.Raised)+len(got.SameKey)+len(got.Unrecorded), "revocation was", "revocations were"), path, len(got.Revoked), len(got.Raised), len(got.SameKey), len(got.Unrecorded)), nil
}

// counted is n with the words for one or for many.
func counted(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
