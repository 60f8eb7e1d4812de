package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/ca"
	"pkid/internal/audit"
	"pkid/store"
)

// revokeCert revokes a certificate (RFC 8555 §7.6), signed by the account
// that ordered it, by an account that holds valid authorizations for every
// identifier in it (kid), or by the certificate's own key (jwk).
func (s *Server) revokeCert(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOrJWK)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	var b struct {
		Certificate string `json:"certificate"`
		Reason      *int   `json:"reason"`
	}
	if err := json.Unmarshal(req.payload, &b); err != nil || b.Certificate == "" {
		s.writeProblem(w, r, malformed(`revokeCert takes {"certificate": base64url(DER), "reason": n}`))
		return
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b.Certificate, "="))
	if err != nil {
		s.writeProblem(w, r, malformed("certificate is not base64url"))
		return
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		s.writeProblem(w, r, malformed("certificate does not parse: "+err.Error()))
		return
	}
	reason := "unspecified"
	if b.Reason != nil {
		if reason = ca.ReasonName(*b.Reason); reason == "" {
			s.writeProblem(w, r, badRevocationReason(fmt.Sprintf("reason code %d is not accepted (0, 1, 3, 4, 5, 9; never 6, certificateHold)", *b.Reason)))
			return
		}
	}
	rec, err := s.d.CA.Store().GetCertificate(r.Context(), ca.SerialString(cert.SerialNumber))
	if err != nil || !bytes.Equal(rec.DER, der) {
		s.writeProblem(w, r, notFound("this certificate was not issued by this CA"))
		return
	}
	switch {
	case req.account != nil && rec.Requester != accountRequester(req.account.ID):
		// Not the subscriber: an account that proved control of every
		// name. It may only say the names are no longer the subscriber's
		// (Boulder's rule, after Mozilla's policy): other reasons are the
		// subscriber's to give, and keyCompromise is proved by the key.
		if err := s.authorizedForAll(r, req.account.ID, cert, rec); err != nil {
			s.writeProblem(w, r, err)
			return
		}
		if b.Reason != nil && reason != "unspecified" && reason != "cessationOfOperation" {
			s.writeProblem(w, r, badRevocationReason(fmt.Sprintf("an account that holds authorizations for every name but did not order the certificate revokes it for cessationOfOperation (or unspecified, recorded as that), not %s: sign with the account that ordered it, or, for keyCompromise, with the certificate's key", reason)))
			return
		}
		reason = "cessationOfOperation"
	case req.account != nil:
	default:
		certKey := jose.JSONWebKey{Key: cert.PublicKey}
		want, err1 := thumbprint(&certKey)
		got, err2 := thumbprint(req.jwk)
		if err1 != nil || err2 != nil || want != got {
			s.writeProblem(w, r, unauthorized("the jwk is not the certificate's public key"))
			return
		}
		// Holding the key proves only that the key is out of the
		// subscriber's sole keeping (Boulder's rule): the revocation is
		// for keyCompromise, which blocks the key; other reasons are the
		// ordering account's to give.
		if reason != "unspecified" && reason != "keyCompromise" {
			s.writeProblem(w, r, badRevocationReason(fmt.Sprintf("a revocation signed with the certificate's key is for keyCompromise (or unspecified, recorded as that), not %s: sign with the account that ordered it to give another reason", reason)))
			return
		}
		reason = "keyCompromise"
	}
	who := "acme-certkey"
	if req.account != nil {
		who = accountRequester(req.account.ID)
	}
	_, sameKey, err := s.d.CA.Revoke(r.Context(), rec.Serial, reason)
	if err != nil {
		audit.Log(r.Context(), s.log, audit.Entry{Event: "revoke", Requester: who, Role: rec.Role, Names: rec.Names, Outcome: "refused", Serial: rec.Serial, Reason: err.Error()})
		s.writeProblem(w, r, err)
		return
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "revoke", Requester: who, Role: rec.Role, Names: rec.Names, Outcome: "revoked", Serial: rec.Serial, Reason: reason})
	audit.SameKey(r.Context(), s.log, who, rec.Serial, sameKey)
	w.WriteHeader(http.StatusOK)
}

// authorizedForAll is nil when the account holds a valid, unexpired
// authorization for every identifier in cert (RFC 8555 §7.6), and
// otherwise the unauthorized problem that names the first one it lacks.
// pkid's own certificates (ca.OwnRole) are an administrator's to revoke,
// and a certificate with a name ACME cannot authorize (a URI, an email
// address) or with none is no account's.
func (s *Server) authorizedForAll(r *http.Request, accountID string, cert *x509.Certificate, rec *store.CertRecord) error {
	const refuse = "this account did not order this certificate and "
	if ca.OwnRole(rec.Role) {
		return unauthorized(refuse + "it is one of pkid's own; an administrator revokes it")
	}
	if len(cert.URIs)+len(cert.EmailAddresses) > 0 || len(cert.DNSNames)+len(cert.IPAddresses) == 0 {
		return unauthorized(refuse + "names in it are not ones an ACME account can hold authorizations for; sign with the account that ordered it, or with the certificate's key")
	}
	var ids []Ident
	for _, n := range cert.DNSNames {
		ids = append(ids, Ident{Type: "dns", Value: n})
	}
	for _, ip := range cert.IPAddresses {
		a, _ := netip.AddrFromSlice(ip)
		ids = append(ids, Ident{Type: "ip", Value: a.Unmap().String()})
	}
	now := s.d.Clock.Now()
	for _, id := range ids {
		base, wildcard := authzIdent(id)
		// A wildcard name is covered by an authorization of its base
		// name, wildcard or not: either proved control of the domain.
		_, err := s.d.Store.FindValidAuthz(r.Context(), accountID, base, wildcard, time.Time{}, now)
		if err != nil && wildcard {
			_, err = s.d.Store.FindValidAuthz(r.Context(), accountID, base, false, time.Time{}, now)
		}
		if errors.Is(err, store.ErrNotFound) {
			return unauthorized(fmt.Sprintf("%sholds no valid authorization for %s %s; sign with the account that ordered it, with one that holds authorizations for every name in it, or with the certificate's key", refuse, id.Type, id.Value))
		}
		if err != nil {
			return fmt.Errorf("revoke %s: authorization for %s %s: %w", rec.Serial, id.Type, id.Value, err)
		}
	}
	return nil
}
