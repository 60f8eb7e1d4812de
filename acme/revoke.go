package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/ca"
	"pkid/internal/audit"
)

// revokeCert revokes a certificate (RFC 8555 §7.6), signed either by the
// account that ordered it (kid) or by the certificate's own key (jwk).
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
	case req.account != nil:
		if rec.Requester != "acme:"+req.account.ID {
			s.writeProblem(w, r, unauthorized("this account did not order this certificate; sign with the account that did, or with the certificate's key"))
			return
		}
	default:
		certKey := jose.JSONWebKey{Key: cert.PublicKey}
		want, err1 := thumbprint(&certKey)
		got, err2 := thumbprint(req.jwk)
		if err1 != nil || err2 != nil || want != got {
			s.writeProblem(w, r, unauthorized("the jwk is not the certificate's public key"))
			return
		}
	}
	who := "acme-certkey"
	if req.account != nil {
		who = "acme:" + req.account.ID
	}
	if _, err := s.d.CA.Revoke(r.Context(), rec.Serial, reason); err != nil {
		audit.Log(r.Context(), s.log, audit.Entry{Event: "revoke", Requester: who, Role: rec.Role, Names: rec.Names, Outcome: "refused", Serial: rec.Serial, Reason: err.Error()})
		s.writeProblem(w, r, err)
		return
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "revoke", Requester: who, Role: rec.Role, Names: rec.Names, Outcome: "revoked", Serial: rec.Serial, Reason: reason})
	w.WriteHeader(http.StatusOK)
}
