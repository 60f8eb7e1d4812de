package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/audit"
	"pkid/store"
)

// ReappliedView is the admin socket's answer to a CRL reapplied (POST
// /reapply-crl), and what `pkid cert revoke --from-crl` prints from: the
// serials in each of ca.Reapplied's groups.
type ReappliedView struct {
	Issuer     string        `json:"issuer"`
	Number     string        `json:"number"`
	ThisUpdate time.Time     `json:"this_update"`
	Entries    int           `json:"entries"`
	Revoked    []RevokedView `json:"revoked"`
	Raised     []RevokedView `json:"raised"`
	SameKey    []RevokedView `json:"same_key"`
	Already    int           `json:"already"`
	// Unrecorded are listed on the CRL again with no record in the store
	// (issued after its copy was made).
	Unrecorded []RevokedView `json:"unrecorded"`
}

// RevokedView is one certificate a reapplied CRL revoked again.
type RevokedView struct {
	Serial    string    `json:"serial"`
	Names     []string  `json:"names"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
}

// NewReappliedView is r as the admin socket answers it.
func NewReappliedView(r *ca.Reapplied) ReappliedView {
	views := func(recs []*store.CertRecord) []RevokedView {
		out := []RevokedView{}
		for _, rec := range recs {
			out = append(out, RevokedView{Serial: rec.Serial, Names: rec.Names, Reason: rec.Reason, RevokedAt: rec.RevokedAt})
		}
		return out
	}
	unrecorded := []RevokedView{}
	for _, e := range r.Unrecorded {
		unrecorded = append(unrecorded, RevokedView{Serial: e.Serial, Names: []string{}, Reason: e.Reason, RevokedAt: e.RevokedAt})
	}
	return ReappliedView{Issuer: r.Issuer, Number: r.Number.String(), ThisUpdate: r.ThisUpdate, Entries: r.Entries,
		Revoked: views(r.Revoked), Raised: views(r.Raised), SameKey: views(r.SameKey), Already: r.Already, Unrecorded: unrecorded}
}

// adminReapplyCRL puts back the revocations a CRL of this CA lists that
// the store lost (a restore from a backup): ca.Authority.ReapplyCRL. The
// body is the CRL's DER. Each revocation put back is an audit line naming
// the CRL it came from.
func (s *Server) adminReapplyCRL(w http.ResponseWriter, r *http.Request) {
	der, err := io.ReadAll(r.Body)
	if err != nil {
		writeProblem(w, r, s.log, errs.Wrap(errs.Malformed, err, "read the CRL: %v", err))
		return
	}
	// A long CRL whose revocations were all lost (~0.1 ms an entry,
	// BenchmarkReapplyCRL) may take longer than the socket's write
	// timeout.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		s.log.Warn("reapply CRL: cannot lift the write deadline", "err", err)
	}
	got, err := s.opts.CA.ReapplyCRL(r.Context(), der)
	if got != nil {
		AuditReapplied(r.Context(), s.log, adminSocket, got)
	}
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, NewReappliedView(got))
}

// AuditReapplied logs one revoke line per certificate a reapplied CRL
// revoked again, naming the CRL, for the requester who reapplied it: the
// admin socket's, or an offline command's (OfflineAudit).
func AuditReapplied(ctx context.Context, log *slog.Logger, by string, got *ca.Reapplied) {
	from := []any{"from_crl", got.Number.String(), "crl_issuer", got.Issuer}
	for _, recs := range [][]*store.CertRecord{got.Revoked, got.Raised} {
		for _, rec := range recs {
			audit.Log(ctx, log, audit.Entry{Event: "revoke", Requester: by, Role: rec.Role, Names: rec.Names, Outcome: "revoked", Serial: rec.Serial, Reason: rec.Reason}, from...)
		}
	}
	for _, rec := range got.SameKey {
		audit.SameKey(ctx, log, by, got.SameKeyAs[rec.Serial], []*store.CertRecord{rec}, from...)
	}
	for _, e := range got.Unrecorded {
		audit.Log(ctx, log, audit.Entry{Event: "revoke", Requester: by, Outcome: "revoked", Serial: e.Serial, Reason: e.Reason}, append([]any{"record", "none"}, from...)...)
	}
}
