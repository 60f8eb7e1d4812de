package acme

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/audit"
	"pkid/policies"
	"pkid/store"
)

// csrIdentifiers returns a CSR's names as identifiers: the CN (when not
// already a SAN) and every DNS and IP SAN. Any other SAN type is refused.
func csrIdentifiers(csr *x509.CertificateRequest) ([]Ident, error) {
	if len(csr.URIs)+len(csr.EmailAddresses) > 0 {
		return nil, badCSR("ACME certificates carry only DNS names and IP addresses; the CSR has URI or email SANs")
	}
	var out []Ident
	add := func(id Ident) {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, n := range csr.DNSNames {
		add(Ident{Type: "dns", Value: policies.NormalizeDNS(n)})
	}
	for _, ip := range csr.IPAddresses {
		add(Ident{Type: "ip", Value: ip.String()})
	}
	if cn := csr.Subject.CommonName; cn != "" {
		id, err := canonicalIdent(Ident{Type: "dns", Value: cn})
		if ipID, ierr := canonicalIdent(Ident{Type: "ip", Value: cn}); ierr == nil {
			id, err = ipID, nil
		}
		if err != nil {
			return nil, badCSR("CSR common name " + cn + " is not a name")
		}
		add(id)
	}
	return out, nil
}

func identString(ids []Ident) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Value
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

func (s *Server) finalize(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	var o *store.ACMEOrder
	if err == nil {
		o, err = s.loadOrder(r, req)
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if o.Status != store.ACMEReady {
		s.writeProblem(w, r, orderNotReady(fmt.Sprintf("order is %s; it must be ready (every authorization valid) to finalize", o.Status)))
		return
	}
	var b struct {
		CSR string `json:"csr"`
	}
	if err := json.Unmarshal(req.payload, &b); err != nil || b.CSR == "" {
		s.writeProblem(w, r, malformed(`finalize takes {"csr": base64url(DER)}`))
		return
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b.CSR, "="))
	if err != nil {
		s.writeProblem(w, r, badCSR("csr is not base64url"))
		return
	}
	csr, err := ca.ParseCSRDER(der)
	if err != nil {
		s.writeProblem(w, r, badCSR(err.Error()))
		return
	}
	ids, err := csrIdentifiers(csr)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if identString(ids) != identString(o.Identifiers) {
		s.writeProblem(w, r, badCSR(fmt.Sprintf("CSR names [%s] differ from the order's identifiers [%s]", identString(ids), identString(o.Identifiers))))
		return
	}
	// From here the work runs to the end even if the client hangs up (a
	// timeout, a killed client): an order left half done would be invalid
	// with no certificate, while a finished one waits for the client's next
	// poll (RFC 8555 §7.4 lets finalize complete after the answer).
	ctx := context.WithoutCancel(r.Context())
	// The serial is chosen, and written with the processing status, before
	// signing: should the CA stop between the certificate's commit and the
	// order's, the order finds its certificate by it (refreshOrder).
	serial, err := s.d.CA.ReserveSerial()
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	// Move the stored status (pending, or ready for orders whose
	// authorizations were reused) to processing once, so two finalize calls
	// cannot both sign.
	o, err = s.d.Store.UpdateOrder(ctx, o.ID, func(cur *store.ACMEOrder) error {
		if cur.Status != store.ACMEPending && cur.Status != store.ACMEReady {
			return orderNotReady("order is " + cur.Status)
		}
		cur.Status, cur.ProcessingSince, cur.PendingSerial = store.ACMEProcessing, s.d.Clock.Now().UTC(), ca.SerialString(serial)
		return nil
	})
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	names := make([]string, len(o.Identifiers))
	for i, id := range o.Identifiers {
		names[i] = id.Value
	}
	iss, signErr := s.d.CA.Sign(ctx, &ca.SignRequest{Role: req.role, CSR: csr, Requester: accountRequester(req.account.ID), Via: store.ViaACME, ExactNames: names, Serial: serial, Replaces: o.ReplacesSerial})
	refused := csrRefusal(signErr)
	limited := errs.KindOf(signErr) == errs.RateLimited
	o, err = s.d.Store.UpdateOrder(ctx, o.ID, func(cur *store.ACMEOrder) error {
		switch {
		case refused != nil || limited:
			// Nothing was signed: the order is ready again for a CSR the
			// role accepts (RFC 8555 §7.4), or for the same one once the
			// account's allowance is back.
			cur.Status, cur.ProcessingSince, cur.PendingSerial = store.ACMEReady, time.Time{}, ""
		case signErr != nil:
			cur.Status = store.ACMEInvalid
			cur.Error, _ = json.Marshal(toProblem(signErr))
		default:
			cur.Status, cur.CertSerial = store.ACMEValid, iss.Record.Serial
		}
		return nil
	})
	if signErr != nil {
		audit.Log(r.Context(), s.log, audit.Entry{Event: "issue", Requester: accountRequester(req.account.ID), Role: req.role, Names: names, Outcome: "refused", Reason: signErr.Error()})
		if refused != nil {
			s.writeProblem(w, r, refused)
		} else {
			s.writeProblem(w, r, signErr)
		}
		return
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "issue", Requester: accountRequester(req.account.ID), Role: req.role, Names: iss.Names, Outcome: "issued", Serial: iss.Record.Serial}, "via", store.ViaACME)
	w.Header().Set("Location", s.link.order(req.role, o.ID))
	writeJSON(w, http.StatusOK, s.viewOrder(o))
}

// cert serves the PEM chain (leaf, intermediate) to the account that
// ordered it.
func (s *Server) cert(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	if err == nil && !req.postAsGet {
		err = malformed("certificates are fetched with POST-as-GET (an empty payload)")
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	serial := mux.Vars(r)["serial"]
	rec, err := s.d.CA.Store().GetCertificate(r.Context(), serial)
	if err != nil || rec.Requester != accountRequester(req.account.ID) {
		s.writeProblem(w, r, notFound("no certificate "+serial+" for this account"))
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.WriteHeader(http.StatusOK)
	w.Write(ca.PEMCert(rec.DER))
	w.Write(s.d.CA.IssuerPEM(rec.Issuer)) // a retired intermediate for a certificate from before a rotation
}

// csrRefusal is the problem for a CSR the role refused when finalize asked
// the CA to sign it — its key (type, size, blocked after a keyCompromise)
// or its names under the role as it is now — or nil for any other failure.
// RFC 8555 §7.4: such a refusal is badCSR ("e.g., due to a short key"), or
// rejectedIdentifier for names alone, and the order stays ready.
func csrRefusal(err error) *Problem {
	switch errs.KindOf(err) {
	case errs.Forbidden, errs.BadCSR:
		return badCSR(errs.DetailOf(err))
	case errs.RejectedIdentifier:
		return rejectedIdentifier(errs.DetailOf(err))
	}
	return nil
}
