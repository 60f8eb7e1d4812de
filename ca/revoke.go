package ca

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"pkid/errs"
	"pkid/store"
)

// Reasons pkid accepts, with their RFC 5280 CRLReason codes. certificateHold
// is absent on purpose: a revocation is never undone.
var Reasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
}

// CheckReason refuses a reason pkid does not accept, naming those it
// does: the one check for the API, ACME and the CLI.
func CheckReason(reason string) error {
	if _, ok := Reasons[reason]; ok {
		return nil
	}
	names := slices.Sorted(maps.Keys(Reasons))
	return errs.New(errs.BadRevocationReason, "reason %q is not accepted (accepted: %s)", reason, strings.Join(names, ", "))
}

// ReasonName maps an RFC 5280 code back to its name ("" if not accepted).
func ReasonName(code int) string {
	for n, c := range Reasons {
		if c == code {
			return n
		}
	}
	return ""
}

// Revoke marks serial revoked for reason. Revoking again is a Conflict
// unless it raises the reason to keyCompromise; keyCompromise blocks the
// key from being certified again, and revokes with it every other
// certificate of the key still valid (sameKey: a renewal that kept its
// key, a client that reuses one). An expired certificate is refused unless
// the reason is keyCompromise: a key found leaked after its certificate
// expired must still never be certified again. After it commits, CRL and
// OCSP are refreshed through the onRevoke hook, for each record revoked.
func (a *Authority) Revoke(ctx context.Context, serial, reason string) (rec *store.CertRecord, sameKey []*store.CertRecord, err error) {
	if reason == "" {
		reason = "unspecified"
	}
	if err := CheckReason(reason); err != nil {
		return nil, nil, err
	}
	sn, err := NormalizeSerial(serial)
	if err != nil {
		return nil, nil, err
	}
	now := a.d.Clock.Now().UTC()
	rec, sameKey, err = a.d.Store.UpdateCertificate(ctx, sn, func(r *store.CertRecord) error {
		if now.After(r.NotAfter) && reason != "keyCompromise" {
			return errs.New(errs.Conflict, "certificate %s expired at %s; an expired certificate is not revoked (it is no longer trusted anyway), except for keyCompromise, which blocks its key", r.Serial, r.NotAfter.Format("2006-01-02T15:04:05Z"))
		}
		if changed, _ := markRevoked(r, now, reason); !changed {
			return errs.New(errs.AlreadyRevoked, "certificate %s is already revoked (reason %s); revoking again may only raise the reason to keyCompromise", r.Serial, r.Reason)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errs.New(errs.NotFound, "no certificate with serial %s was issued by this CA", sn)
	}
	if err != nil {
		return nil, nil, err
	}
	a.revoked.run(rec)
	for _, r := range sameKey {
		a.revoked.run(r)
	}
	return rec, sameKey, nil
}

// markRevoked applies a revocation for reason at at to r, by the one rule
// every revocation follows: a valid record becomes revoked; a revoked one
// keeps its time and may only have its reason raised to keyCompromise
// (raised). It reports whether r changed.
func markRevoked(r *store.CertRecord, at time.Time, reason string) (changed, raised bool) {
	if r.Status != store.StatusRevoked {
		r.Status, r.RevokedAt, r.Reason = store.StatusRevoked, at, reason
		return true, false
	}
	if reason == "keyCompromise" && r.Reason != reason {
		r.Reason = reason
		return true, true
	}
	return false, false
}

// KeyBlocked reports whether pub belongs to a certificate revoked for
// keyCompromise. Such a key is never certified again, and ACME takes it as
// no account's key either.
func (a *Authority) KeyBlocked(ctx context.Context, pub crypto.PublicKey) (bool, error) {
	h, err := PublicKeyHash(pub)
	if err != nil {
		return false, fmt.Errorf("key blocked: %w", err)
	}
	return a.d.Store.KeyBlocked(ctx, h)
}
