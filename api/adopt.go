package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/audit"
)

// AdoptBody is the admin socket's POST /adopt: one certificate (DER) to
// record under a role, as ACME's if ACME is set.
type AdoptBody struct {
	DER  []byte `json:"der"`
	Role string `json:"role"`
	ACME bool   `json:"acme,omitempty"`
}

// AdoptedView is the answer: the record, and whether it was there already.
type AdoptedView struct {
	CertView
	Already bool `json:"already,omitempty"`
}

// adminAdopt records a certificate this CA signed that a store restored
// from a backup does not hold (ca.Authority.Adopt), with an audit line.
func (s *Server) adminAdopt(w http.ResponseWriter, r *http.Request) {
	var b AdoptBody
	if err := decodeJSON(r, &b); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	got, err := s.opts.CA.Adopt(r.Context(), b.DER, b.Role, adminSocket, b.ACME)
	if err != nil {
		audit.Log(r.Context(), s.log, audit.Entry{Event: "adopt", Requester: adminSocket, Role: b.Role, Outcome: "refused", Reason: errs.DetailOf(err)})
		writeProblem(w, r, s.log, err)
		return
	}
	AuditAdopted(r.Context(), s.log, adminSocket, got)
	writeJSON(w, http.StatusOK, NewAdoptedView(got, s.opts.Clock.Now()))
}

// NewAdoptedView is got as the admin socket answers it, with who asked
// for the certificate.
func NewAdoptedView(got *ca.Adoption, now time.Time) AdoptedView {
	v := certView(got.Record, now)
	v.Requester, v.AuthorizedBy = got.Record.Requester, got.Record.AuthorizedBy
	return AdoptedView{CertView: v, Already: got.Already}
}

// AuditAdopted logs a certificate adopted, by the admin socket or an
// offline command (OfflineAudit); one recorded already is not logged.
func AuditAdopted(ctx context.Context, log *slog.Logger, by string, got *ca.Adoption) {
	if got.Already {
		return
	}
	rec := got.Record
	audit.Log(ctx, log, audit.Entry{Event: "adopt", Requester: by, Role: rec.Role, Names: rec.Names, Outcome: "adopted", Serial: rec.Serial}, "via", rec.Via)
}
