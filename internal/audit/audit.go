// Package audit writes the audit lines of issuance and revocation. The REST
// API and the ACME server both issue and revoke, and operators parse these
// lines, so one function writes them for both, with the request ID the
// HTTP middleware put in the context.
package audit

import (
	"context"
	"log/slog"

	"pkid/store"
)

type ctxKey struct{}

// WithRequestID returns ctx carrying the request ID that audit lines (and
// error logs) written under it report.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID is the ID WithRequestID put in ctx, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(ctxKey{}).(string)
	return s
}

// Entry is one audited decision: who asked, under which role, for which
// names, and what came of it. Never a secret or a key.
type Entry struct {
	Event     string // "issue", "renew", "revoke", "auth", "acme.validate", "acme.account.create" (.keychange, .deactivate)
	Requester string
	Role      string
	Names     []string
	Outcome   string // "issued", "refused", "revoked", "accepted", "valid", "invalid"
	Serial    string // omitted when empty
	Reason    string // omitted when empty
}

// Log writes e as one "audit" line at Info, then extra key/value pairs
// (a key without a value, or whose value is "", is dropped, as Serial and
// Reason are when empty).
func Log(ctx context.Context, log *slog.Logger, e Entry, extra ...any) {
	// Typed attributes: one line per issuance, so no boxing of the fixed fields.
	attrs := make([]slog.Attr, 0, 8+len(extra)/2)
	attrs = append(attrs, slog.String("event", e.Event), slog.String("requester", e.Requester), slog.String("role", e.Role),
		slog.Any("names", e.Names), slog.String("outcome", e.Outcome), slog.String("request_id", RequestID(ctx)))
	if e.Serial != "" {
		attrs = append(attrs, slog.String("serial", e.Serial))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if v, ok := extra[i+1].(string); ok && v == "" {
			continue
		}
		attrs = append(attrs, slog.Any(extra[i].(string), extra[i+1]))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// SameKey writes a "revoked" line for each certificate that the
// keyCompromise revocation of serial revoked with it (ca.Revoke's
// sameKey), for the requester who asked, with its extra pairs: every
// certificate that leaves service is on the audit log.
func SameKey(ctx context.Context, log *slog.Logger, requester, serial string, sameKey []*store.CertRecord, extra ...any) {
	for _, r := range sameKey {
		Log(ctx, log, Entry{Event: "revoke", Requester: requester, Role: r.Role, Names: r.Names, Outcome: "revoked", Serial: r.Serial, Reason: r.Reason},
			append([]any{"same_key_as", serial}, extra...)...)
	}
}
