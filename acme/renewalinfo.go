package acme

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"pkid/ca"
	"pkid/errs"
	"pkid/store"
)

// ACME Renewal Information (RFC 9773): a client asks, without signing,
// when to renew a certificate, and names the certificate it replaces in
// its next order. pkid's answer follows the rule of its own renewal
// daemon, two thirds of the lifetime, so a fleet of ACME clients spreads
// its renewals over a window instead of each choosing its own margin;
// a revoked certificate gets a window in the past: renew now.

// certID is an RFC 9773 §4.1 certificate identifier:
// base64url(AKI keyIdentifier) "." base64url(serial number's DER content).
type certID struct {
	issuer string // the AKI as pkid writes issuers: lowercase hex
	serial string // ca.SerialString form
}

// parseCertID reads a certificate identifier from outside (a URL path
// segment, an order's "replaces"), saying exactly what is wrong with it.
func parseCertID(s string) (certID, error) {
	akiText, serialText, ok := strings.Cut(s, ".")
	if !ok || strings.Contains(serialText, ".") {
		return certID{}, errors.New("a certificate identifier is base64url(authority key identifier) \".\" base64url(serial number), RFC 9773 §4.1")
	}
	aki, err := b64url(akiText)
	if err != nil {
		return certID{}, fmt.Errorf("its authority key identifier is not unpadded base64url: %w", err)
	}
	der, err := b64url(serialText)
	if err != nil {
		return certID{}, fmt.Errorf("its serial number is not unpadded base64url: %w", err)
	}
	// The serial is the DER content of a positive INTEGER: minimal, so
	// one certificate has one identifier, and at most 20 octets (RFC 5280
	// §4.1.2.2) plus the 0x00 that keeps a high bit positive.
	switch {
	case der[0]&0x80 != 0:
		return certID{}, errors.New("its serial number is negative: certificate serials are positive (RFC 5280 §4.1.2.2)")
	case len(der) > 1 && der[0] == 0 && der[1]&0x80 == 0:
		return certID{}, errors.New("its serial number has a leading zero octet: DER integers are minimal")
	case len(der) > 21 || len(der) == 21 && der[0] != 0:
		return certID{}, errors.New("its serial number is longer than 20 octets (RFC 5280 §4.1.2.2)")
	}
	return certID{issuer: hex.EncodeToString(aki), serial: ca.SerialString(new(big.Int).SetBytes(der))}, nil
}

// b64url decodes unpadded base64url, refusing what the decoder would skip
// (line breaks): one identifier, one spelling.
func b64url(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("it is empty")
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%q is outside the base64url alphabet", c)
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// lookupCertID finds the record a certificate identifier names: issued
// by this CA under role. A record of another issuer under the same serial
// is not it.
func (s *Server) lookupCertID(r *http.Request, role string, id certID) (*store.CertRecord, error) {
	rec, err := s.d.CA.Store().GetCertificate(r.Context(), id.serial)
	if errors.Is(err, store.ErrNotFound) || err == nil && !strings.EqualFold(rec.Issuer, id.issuer) {
		issuer := id.issuer
		if len(issuer) > 64 {
			issuer = issuer[:64] + "…"
		}
		return nil, fmt.Errorf("no certificate with serial %s from issuer %s: %w", id.serial, issuer, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if rec.Role != role {
		return nil, fmt.Errorf("certificate %s was issued under role %q, not %q: ask that role's directory: %w", id.serial, rec.Role, role, store.ErrNotFound)
	}
	return rec, nil
}

// renewalWindow is RFC 9773 §4.2's suggestedWindow for rec at now, and
// how long a client should wait before asking again (Retry-After).
//
// A valid certificate's window ends at two thirds of its lifetime (where
// `pkid cert renew --daemon` renews) and opens a tenth of the lifetime
// before that, which leaves a third for retries. A revoked one's window
// lies wholly in the past, so a client renews at once (RFC 9773 §4.2), as
// does one that is not valid yet on this clock.
// Clients ask again after a twenty-fourth of the lifetime, between a
// minute and six hours: an hour for a 24-hour certificate, and a
// revocation reaches them well before the window opens.
func renewalWindow(rec *store.CertRecord, now time.Time) (start, end time.Time, retry time.Duration) {
	life := rec.NotAfter.Sub(rec.NotBefore)
	retry = min(max((life/24).Truncate(time.Minute), time.Minute), 6*time.Hour)
	// Not valid yet: signed while this clock ran ahead, since stepped
	// back; clients with a right clock refuse it until its notBefore.
	if rec.Status == store.StatusRevoked || rec.NotBefore.After(now) {
		return now.Add(-time.Hour), now.Add(-30 * time.Minute), retry
	}
	end = rec.NotBefore.Add(life * 2 / 3)
	return end.Add(-life / 10), end, retry
}

type renewalInfoView struct {
	SuggestedWindow struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"suggestedWindow"`
	ExplanationURL string `json:"explanationURL,omitempty"`
}

// renewalInfo answers GET {renewalInfo}/{certID} (RFC 9773 §4.1): not a
// POST-as-GET, as anyone may ask when a certificate should be renewed.
func (s *Server) renewalInfo(w http.ResponseWriter, r *http.Request) {
	role, _ := s.roleOf(r)
	id, err := parseCertID(mux.Vars(r)["certid"])
	if err != nil {
		s.writeProblem(w, r, malformed("renewalInfo: "+err.Error()))
		return
	}
	rec, err := s.lookupCertID(r, role, id)
	if errors.Is(err, store.ErrNotFound) {
		s.writeProblem(w, r, notFound("renewalInfo: "+err.Error()))
		return
	}
	if err != nil {
		s.writeProblem(w, r, fmt.Errorf("renewalInfo %s: %w", id.serial, err))
		return
	}
	start, end, retry := renewalWindow(rec, s.d.Clock.Now())
	var v renewalInfoView
	v.SuggestedWindow.Start = start.UTC().Format(time.RFC3339)
	v.SuggestedWindow.End = end.UTC().Format(time.RFC3339)
	if rec.Status == store.StatusRevoked {
		// Why "renew now": the certificate's public record (revoked, when,
		// for what reason), which clients such as mod_md log.
		v.ExplanationURL = s.externalURL + "/v1/certs/" + rec.Serial
	}
	w.Header().Set("Retry-After", errs.RetryAfterSeconds(retry))
	writeJSON(w, http.StatusOK, v)
}

// checkReplaces applies RFC 9773 §5's checks to a new order's "replaces":
// the certificate was issued to this account, shares an identifier with
// the order, and has not been replaced already. It returns the
// certificate's serial, or "" for a certificate this directory holds no
// record of: one issued before the store was restored from a backup,
// pruned by storage.retention, or issued under another role or by
// another CA (a client moved to this directory). Such an order is
// accepted and echoes "replaces", but replaces nothing here: a
// replacement gains nothing at pkid (no limit is lifted for it), and
// refusing it would stop clients that cannot order without it (lego
// falls back only on alreadyReplaced) from renewing at all.
func (s *Server) checkReplaces(r *http.Request, req *request, replaces string, idents []Ident) (string, error) {
	id, err := parseCertID(replaces)
	if err != nil {
		return "", malformed("replaces: " + err.Error())
	}
	rec, err := s.lookupCertID(r, req.role, id)
	if errors.Is(err, store.ErrNotFound) {
		s.log.DebugContext(r.Context(), "replaces names no certificate of this directory: the order replaces nothing", "account", req.account.ID, "err", err)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("replaces %s: %w", id.serial, err)
	}
	if rec.Requester == store.ViaAdopted {
		// Adopted after a restore (ca.Authority.Adopt): which account
		// ordered it is not known, so it is not this one's to replace,
		// nor another's to refuse.
		return "", nil
	}
	if rec.Requester != accountRequester(req.account.ID) {
		return "", unauthorized("replaces: certificate " + rec.Serial + " was not issued to this account")
	}
	shared := slices.ContainsFunc(idents, func(id Ident) bool { return slices.Contains(rec.Names, id.Value) })
	if !shared {
		return "", malformed(fmt.Sprintf("replaces: certificate %s is for [%s], and this order shares none of its identifiers [%s]", rec.Serial, strings.Join(rec.Names, ", "), identString(idents)))
	}
	if rec.ReplacedBy != "" {
		return "", alreadyReplaced(fmt.Sprintf("certificate %s was already replaced by %s; order without \"replaces\"", rec.Serial, rec.ReplacedBy))
	}
	return rec.Serial, nil
}

// claimReplacement makes o the one order replacing the certificate it
// names: RFC 9773 §5 refuses a second while one that is not invalid
// already does, so a client that renews twice at once gets one
// certificate linked to the old one, not two. An earlier order's claim
// passes on once that order has failed or expired.
func (s *Server) claimReplacement(r *http.Request, o *store.ACMEOrder) error {
	prev, err := s.d.Store.ReplacementOrder(r.Context(), o.ReplacesSerial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		prev = ""
	case err != nil:
		return fmt.Errorf("replaces %s: %w", o.ReplacesSerial, err)
	default:
		live, err := s.liveOrder(r, prev)
		if err != nil {
			return fmt.Errorf("replaces %s: order %s: %w", o.ReplacesSerial, prev, err)
		}
		if live != nil {
			return alreadyReplaced(fmt.Sprintf("certificate %s already has a replacement order, %s (%s); finalize that order, or order without \"replaces\"", o.ReplacesSerial, s.link.order(live.Role, live.ID), live.Status))
		}
	}
	err = s.d.Store.ClaimReplacement(r.Context(), o.ReplacesSerial, prev, o.ID)
	if errors.Is(err, store.ErrStale) {
		return alreadyReplaced(fmt.Sprintf("another order has just claimed the replacement of certificate %s; finalize that order, or order without \"replaces\"", o.ReplacesSerial))
	}
	return err
}

// liveOrder is the order id as it stands now if it is not invalid (nor
// expired, which reads as invalid), or nil.
func (s *Server) liveOrder(r *http.Request, id string) (*store.ACMEOrder, error) {
	o, err := s.d.Store.GetOrder(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // pruned, or its creation failed after the claim
	}
	if err != nil {
		return nil, err
	}
	if o, err = s.refreshOrder(r, o); err != nil || o.Status == store.ACMEInvalid {
		return nil, err
	}
	return o, nil
}
