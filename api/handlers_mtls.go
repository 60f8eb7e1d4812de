package api

import (
	"crypto/x509"
	"net/http"

	"pkid/ca"
	"pkid/errs"
	"pkid/store"
)

func peerCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

type renewBody struct {
	CSR string `json:"csr"`
}

// renew answers POST /v1/renew for a client authenticated by a certificate
// this CA issued; the body is optional ({"csr": PEM} for a new key).
func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	cert := peerCert(r)
	requester := "mtls:"
	if cert != nil {
		requester += ca.SerialString(cert.SerialNumber)
	}
	var b renewBody
	var err error
	if r.ContentLength != 0 {
		if err = decodeJSON(r, &b); err != nil && errs.KindOf(err) == errs.Malformed && r.ContentLength < 0 {
			err = nil // an empty chunked body
		}
	}
	var iss *ca.Issued
	if err == nil {
		var csr *x509.CertificateRequest
		if b.CSR != "" {
			csr, err = ca.ParseCSR([]byte(b.CSR))
		}
		if err == nil {
			iss, err = s.opts.CA.Renew(r.Context(), cert, csr)
		}
	}
	if err != nil {
		s.logAudit(r.Context(), "renew", requester, "", nil, "refused", "", errs.DetailOf(err))
		writeProblem(w, r, s.log, err)
		return
	}
	s.logAudit(r.Context(), "renew", requester, iss.Record.Role, iss.Names, "issued", iss.Record.Serial, "", "replaces", iss.Record.Replaces, "authorized_by", iss.Record.AuthorizedBy)
	writeJSON(w, http.StatusCreated, issueResponse(iss, nil))
}

type selfRevokeBody struct {
	Reason string `json:"reason"`
}

// revokeSelf answers POST /v1/revoke/self: a certificate revokes itself.
func (s *Server) revokeSelf(w http.ResponseWriter, r *http.Request) {
	cert := peerCert(r)
	var b selfRevokeBody
	rec, err := s.opts.CA.Authenticate(r.Context(), cert)
	if err == nil && r.ContentLength != 0 {
		err = decodeJSON(r, &b)
	}
	var sameKey []*store.CertRecord
	if err == nil {
		rec, sameKey, err = s.opts.CA.Revoke(r.Context(), rec.Serial, b.Reason)
	}
	if err != nil {
		s.logAudit(r.Context(), "revoke", "mtls", "", nil, "refused", "", errs.DetailOf(err))
		writeProblem(w, r, s.log, err)
		return
	}
	s.answerRevoked(w, r, "mtls:"+rec.Serial, rec, sameKey, s.view(rec))
}
