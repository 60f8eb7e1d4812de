package api

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/audit"
	"pkid/policies"
	"pkid/store"
)

// CertView is a record as the API shows it.
type CertView struct {
	Serial    string    `json:"serial"`
	Issuer    string    `json:"issuer"`
	Role      string    `json:"role"`
	Names     []string  `json:"names"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Status    string    `json:"status"`
	// RevokedAt is null and Reason "" for certificates not revoked; both
	// keys are always present so scripts can read them unconditionally.
	RevokedAt *time.Time `json:"revoked_at"`
	Reason    string     `json:"reason"`
	Replaces  string     `json:"replaces,omitempty"`
	// ReplacedBy is the first certificate issued to replace this one.
	ReplacedBy string `json:"replaced_by,omitempty"`
	// Requester is who asked, as the audit log names them; AuthorizedBy,
	// on a renewal, whose authorization the renewal chain rests on. Only
	// admin answers carry them: GET /v1/certs/{serial} is public.
	Requester    string `json:"requester,omitempty"`
	AuthorizedBy string `json:"authorized_by,omitempty"`
	Certificate  string `json:"certificate"`
	// AlsoRevoked, in the answer to a keyCompromise revocation, lists the
	// other certificates of the key that it revoked.
	AlsoRevoked []string `json:"also_revoked,omitempty"`
}

func (s *Server) view(rec *store.CertRecord) CertView { return certView(rec, s.opts.Clock.Now()) }

// certView is rec as the API shows it, its status as of now.
func certView(rec *store.CertRecord, now time.Time) CertView {
	v := CertView{
		Serial: rec.Serial, Issuer: rec.Issuer, Role: rec.Role, Names: rec.Names,
		NotBefore: rec.NotBefore, NotAfter: rec.NotAfter,
		Status: store.EffectiveStatus(rec, now),
		Reason: rec.Reason, Replaces: rec.Replaces, ReplacedBy: rec.ReplacedBy,
		Certificate: string(ca.PEMCert(rec.DER)),
	}
	if !rec.RevokedAt.IsZero() {
		at := rec.RevokedAt
		v.RevokedAt = &at
	}
	return v
}

// adminView is view with who asked for the certificate, for answers only
// an admin gets.
func (s *Server) adminView(rec *store.CertRecord) CertView {
	v := s.view(rec)
	v.Requester, v.AuthorizedBy = rec.Requester, rec.AuthorizedBy
	return v
}

func (s *Server) getCert(w http.ResponseWriter, r *http.Request) {
	sn, err := ca.NormalizeSerial(mux.Vars(r)["serial"])
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	rec, err := s.opts.Store.GetCertificate(r.Context(), sn)
	if err != nil {
		writeProblem(w, r, s.log, notFound(err, "no certificate with serial "+sn))
		return
	}
	writeJSON(w, http.StatusOK, s.view(rec))
}

func notFound(err error, detail string) error {
	if errs.KindOf(err) == errs.Internal && isNotFound(err) {
		return errs.New(errs.NotFound, "%s", detail)
	}
	return err
}

// requireAdmin authenticates an admin token, and tells its expiry on w.
func (s *Server) requireAdmin(w http.ResponseWriter, r *http.Request) (*store.Token, error) {
	tok, err := s.tokenOf(w, r)
	if err != nil {
		return nil, err
	}
	if !tok.Admin {
		return tok, errs.New(errs.Forbidden, "token %s is not an admin token", tok.Name)
	}
	return tok, nil
}

func (s *Server) listCerts(w http.ResponseWriter, r *http.Request) {
	if _, err := s.requireAdmin(w, r); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.doListCerts(w, r)
}

// doListCerts answers GET /v1/certs once the caller is an admin, and the
// admin socket's GET /certs (pkid cert list).
func (s *Server) doListCerts(w http.ResponseWriter, r *http.Request) {
	q, err := strictQuery(r.URL.RawQuery, "role", "status", "name", "requester", "limit", "cursor")
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	f := store.ListFilter{Role: q.Get("role"), Status: q.Get("status"), Requester: q.Get("requester"), Now: s.opts.Clock.Now()}
	if n := q.Get("name"); n != "" {
		f.Name = policies.RecordedName(n)
	}
	switch f.Status {
	case "", "valid", "revoked", "expired":
	default:
		writeProblem(w, r, s.log, errs.New(errs.Malformed, "status %q: want valid, revoked or expired", f.Status))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, r, s.log, errs.New(errs.Malformed, "limit %q: want 1-1000", l))
			return
		}
		f.Limit = n
	}
	f.Cursor = q.Get("cursor")
	recs, next, err := s.opts.Store.ListCertificates(r.Context(), f)
	if errors.Is(err, store.ErrNotFound) {
		err = errs.New(errs.Malformed, "cursor %q is not a next_cursor this server gave", f.Cursor)
	}
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	items := make([]CertView, 0, len(recs))
	for _, rec := range recs {
		items = append(items, s.adminView(rec))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

// strictQuery parses a query string that may hold only the keys allowed,
// each at most once. Bodies refuse unknown JSON fields; a query must too,
// or a typo such as ?stauts=revoked quietly lists every certificate.
func strictQuery(raw string, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errs.New(errs.Malformed, "the query string does not parse: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(allowed, k) {
			return nil, errs.New(errs.Malformed, "unknown query parameter %q (accepted: %s)", k, strings.Join(allowed, ", "))
		}
		if n := len(q[k]); n > 1 {
			return nil, errs.New(errs.Malformed, "query parameter %q is given %d times; give it once", k, n)
		}
	}
	return q, nil
}

type revokeBody struct {
	Serial string `json:"serial"`
	Reason string `json:"reason"`
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	tok, err := s.requireAdmin(w, r)
	var b revokeBody
	if err == nil {
		err = decodeJSON(r, &b)
	}
	var rec *store.CertRecord
	var sameKey []*store.CertRecord
	if err == nil {
		rec, sameKey, err = s.opts.CA.Revoke(r.Context(), b.Serial, b.Reason)
	}
	requester := requesterOf(tok)
	if err != nil {
		s.logAudit(r.Context(), "revoke", requester, "", nil, "refused", b.Serial, errs.DetailOf(err), "token_id", tokenID(tok))
		writeProblem(w, r, s.log, err)
		return
	}
	s.answerRevoked(w, r, requester, rec, sameKey, s.adminView(rec), "token_id", tokenID(tok))
}

// answerRevoked writes the audit lines of a revocation, the one asked for
// and those of its key it took with it, and answers with v.
func (s *Server) answerRevoked(w http.ResponseWriter, r *http.Request, requester string, rec *store.CertRecord, sameKey []*store.CertRecord, v CertView, extra ...any) {
	s.logAudit(r.Context(), "revoke", requester, rec.Role, rec.Names, "revoked", rec.Serial, rec.Reason, extra...)
	audit.SameKey(r.Context(), s.log, requester, rec.Serial, sameKey, extra...)
	for _, o := range sameKey {
		v.AlsoRevoked = append(v.AlsoRevoked, o.Serial)
	}
	writeJSON(w, http.StatusOK, v)
}
