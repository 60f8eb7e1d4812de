package api

import (
	"context"
	"crypto"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"pkid/ca"
	"pkid/config"
	"pkid/errs"
	"pkid/store"
)

type signBody struct {
	CSR string `json:"csr"`
	TTL string `json:"ttl"`
}

type issueBody struct {
	CommonName  string   `json:"common_name"`
	DNSNames    []string `json:"dns_names"`
	IPAddresses []string `json:"ip_addresses"`
	URIs        []string `json:"uris"`
	Emails      []string `json:"emails"`
	TTL         string   `json:"ttl"`
	KeyType     string   `json:"key_type"`
}

// IssueResponse is the body of 201 answers to sign, issue and renew.
type IssueResponse struct {
	Serial      string    `json:"serial"`
	Certificate string    `json:"certificate"`
	Chain       []string  `json:"chain"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	PrivateKey  string    `json:"private_key,omitempty"`
}

func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errs.New(errs.Malformed, "ttl %q is not a duration: %s", s, config.DurationAdvice(s))
	}
	if d <= 0 {
		return 0, errs.New(errs.Malformed, "ttl %q is not positive", s)
	}
	if d < time.Second {
		return 0, errs.New(errs.Malformed, "ttl %q is under a second: certificate times are whole seconds, so it would be expired when issued", s)
	}
	return d, nil
}

// authorizeIssue runs the checks every issuing route shares, in the
// contract's order: credentials (401), role exists (404), token's roles
// (403). Policy (403) comes later, in ca.
func (s *Server) authorizeIssue(w http.ResponseWriter, r *http.Request, role string) (*store.Token, error) {
	header := r.Header.Get("Authorization")
	if raw, ok := strings.CutPrefix(header, "Bearer "); ok && looksLikeJWT(raw) {
		rl := s.opts.CA.Role(role)
		if rl == nil {
			return nil, errs.New(errs.NotFound, "unknown role %q", role)
		}
		tok, claims, err := s.authenticateOIDC(r.Context(), rl, strings.TrimSpace(raw))
		if err != nil {
			s.logAudit(r.Context(), "auth", "oidc", role, nil, "refused", "", errs.DetailOf(err))
			return nil, err
		}
		s.logAudit(r.Context(), "auth", tok.Name, role, nil, "accepted", "", "", "claims", claims)
		return tok, nil
	}
	tok, err := s.tokenOf(w, r)
	if err != nil {
		return nil, err
	}
	if s.opts.CA.Role(role) == nil {
		return tok, errs.New(errs.NotFound, "unknown role %q", role)
	}
	return tok, allowsRole(tok, role)
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) {
	role := mux.Vars(r)["role"]
	var b signBody
	tok, err := s.authorizeIssue(w, r, role)
	if err == nil {
		err = decodeJSON(r, &b)
	}
	var req *ca.SignRequest
	if err == nil {
		req, err = s.signRequest(role, tok, b.CSR, b.TTL)
	}
	s.finishIssue(w, r, tok, role, req, nil, err)
}

func (s *Server) signRequest(role string, tok *store.Token, csrPEM, ttlText string) (*ca.SignRequest, error) {
	ttl, err := parseTTL(ttlText)
	if err != nil {
		return nil, err
	}
	if csrPEM == "" {
		return nil, errs.New(errs.BadCSR, "csr is required: a PEM CERTIFICATE REQUEST")
	}
	csr, err := ca.ParseCSR([]byte(csrPEM))
	if err != nil {
		return nil, err
	}
	if csr.Subject.CommonName == "" && len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) == 0 {
		// Malformed rather than refused: no role allows a certificate for nothing.
		return nil, errs.New(errs.BadCSR, "the CSR names nothing: it has no common name and no subject alternative names")
	}
	return &ca.SignRequest{Role: role, CSR: csr, TTL: ttl, Requester: requesterOf(tok), Via: store.ViaAPI, ExactNames: boundNames(tok)}, nil
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	role := mux.Vars(r)["role"]
	var b issueBody
	tok, err := s.authorizeIssue(w, r, role)
	if err == nil {
		err = decodeJSON(r, &b)
	}
	var ir *ca.IssueRequest
	if err == nil {
		ir, err = issueRequest(role, tok, &b)
	}
	s.finishIssue(w, r, tok, role, nil, ir, err)
}

func issueRequest(role string, tok *store.Token, b *issueBody) (*ca.IssueRequest, error) {
	ttl, err := parseTTL(b.TTL)
	if err != nil {
		return nil, err
	}
	if b.CommonName == "" && len(b.DNSNames)+len(b.IPAddresses)+len(b.URIs)+len(b.Emails) == 0 {
		return nil, errs.New(errs.Malformed, "no names: give common_name or at least one of dns_names, ip_addresses, uris, emails")
	}
	ir := &ca.IssueRequest{
		SignRequest: ca.SignRequest{Role: role, TTL: ttl, Requester: requesterOf(tok), Via: store.ViaAPI, ExactNames: boundNames(tok)},
		KeyType:     b.KeyType, CommonName: b.CommonName, DNSNames: b.DNSNames, URIs: b.URIs, Emails: b.Emails,
	}
	for _, ip := range b.IPAddresses {
		a, err := netip.ParseAddr(ip)
		switch {
		case err != nil || a.Zone() != "":
			return nil, errs.New(errs.Malformed, "ip_addresses: %q is not an IP address", ip)
		case a.Is4In6():
			return nil, errs.New(errs.Malformed, "ip_addresses: %q is an IPv4-mapped IPv6 address; write the IPv4 address itself", ip)
		}
		ir.IPAddresses = append(ir.IPAddresses, net.IP(a.AsSlice()))
	}
	return ir, nil
}

func requesterOf(t *store.Token) string {
	if t == nil {
		return ""
	}
	if t.Once {
		return "enroll:" + t.Name
	}
	if strings.HasPrefix(t.Name, "oidc:") {
		return t.Name
	}
	return "token:" + t.Name
}

// tokenID names, for the audit line, the stored token a request came
// with: token names need not be unique (a rotated token often keeps its
// predecessor's), ids are. "" (left off the line) for OIDC principals,
// which have none, and requests without a token.
func tokenID(t *store.Token) string {
	if t == nil {
		return ""
	}
	return t.ID
}

func boundNames(t *store.Token) []string {
	if t == nil || !t.Once {
		return nil
	}
	return t.Names
}

// finishIssue signs (sign or issue), consuming a single-use token only
// once the request has passed every check but the signature itself, then
// writes the answer and the audit line. The request is read by now, so
// the work runs to the end even if the client hangs up: a single-use token
// is never spent on a certificate left unsigned.
func (s *Server) finishIssue(w http.ResponseWriter, r *http.Request, tok *store.Token, role string, sr *ca.SignRequest, ir *ca.IssueRequest, err error) {
	ctx := context.WithoutCancel(r.Context())
	requester := requesterOf(tok)
	var keyPEM []byte
	if err == nil && ir != nil {
		var key crypto.Signer
		sr, key, err = s.opts.CA.PrepareIssue(ctx, ir)
		if err == nil {
			keyPEM, err = ca.MarshalKey(key)
		}
	}
	if err == nil && tok != nil && tok.Once {
		// Spend the single-use token only on a request that will be signed.
		if err = s.opts.CA.Check(ctx, sr); err == nil {
			if uerr := s.opts.Store.UseToken(ctx, tok.ID, s.opts.Clock.Now()); uerr != nil {
				err = errs.Wrap(errs.Unauthorized, uerr, "enrollment token %s was already used", tok.Name)
			}
		}
	}
	var iss *ca.Issued
	if err == nil {
		iss, err = s.opts.CA.Sign(ctx, sr)
	}
	if err != nil {
		s.logAudit(ctx, "issue", requester, role, requestedNames(sr, ir), "refused", "", errs.DetailOf(err), "token_id", tokenID(tok))
		writeProblem(w, r, s.log, err)
		return
	}
	s.logAudit(ctx, "issue", requester, role, iss.Names, "issued", iss.Record.Serial, "", "via", store.ViaAPI, "token_id", tokenID(tok))
	writeJSON(w, http.StatusCreated, issueResponse(iss, keyPEM))
}

// requestedNames are the names asked for, for the audit line of a refusal,
// in the order csrNames gives them: an issue request's own fields
// (PrepareIssue builds sr from them), or the CSR's.
func requestedNames(sr *ca.SignRequest, ir *ca.IssueRequest) []string {
	if ir != nil {
		names := append([]string{ir.CommonName}, ir.DNSNames...)
		for _, ip := range ir.IPAddresses {
			names = append(names, ip.String())
		}
		return append(append(names, ir.URIs...), ir.Emails...)
	}
	if sr != nil {
		return csrNames(sr.CSR)
	}
	return nil
}

func issueResponse(iss *ca.Issued, keyPEM []byte) IssueResponse {
	return IssueResponse{Serial: iss.Record.Serial, Certificate: string(iss.PEM), Chain: iss.Chain, NotBefore: iss.Record.NotBefore, NotAfter: iss.Record.NotAfter, PrivateKey: string(keyPEM)}
}

func csrNames(c *x509.CertificateRequest) []string {
	if c == nil {
		return nil
	}
	out := []string{}
	if c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	out = append(out, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}
