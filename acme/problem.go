package acme

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"pkid/errs"
	"pkid/internal/respond"
)

// Problem is an ACME problem document (RFC 8555 §6.7).
type Problem struct {
	Type        string     `json:"type"`
	Detail      string     `json:"detail"`
	Status      int        `json:"status"`
	Identifier  *Ident     `json:"identifier,omitempty"`
	Subproblems []*Problem `json:"subproblems,omitempty"`
	// Algorithms lists the JWS algorithms accepted, on badSignatureAlgorithm
	// only, where RFC 8555 §6.2 requires it: a client may retry with one.
	Algorithms []string `json:"algorithms,omitempty"`
}

// Error lets a Problem travel as an error until the edge renders it.
func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

const ns = "urn:ietf:params:acme:error:"

// One constructor per problem type fixes its HTTP status, as in Pebble.
func prob(typ string, status int, detail string) *Problem {
	return &Problem{Type: ns + typ, Detail: detail, Status: status}
}

func malformed(d string) *Problem           { return prob("malformed", 400, d) }
func badNonce(d string) *Problem            { return prob("badNonce", 400, d) }
func unauthorized(d string) *Problem        { return prob("unauthorized", 403, d) }
func badPublicKey(d string) *Problem        { return prob("badPublicKey", 400, d) }
func accountDoesNotExist(d string) *Problem { return prob("accountDoesNotExist", 400, d) }
func rejectedIdentifier(d string) *Problem  { return prob("rejectedIdentifier", 400, d) }
func badCSR(d string) *Problem              { return prob("badCSR", 400, d) }
func orderNotReady(d string) *Problem       { return prob("orderNotReady", 403, d) }
func alreadyRevoked(d string) *Problem      { return prob("alreadyRevoked", 400, d) }
func badRevocationReason(d string) *Problem { return prob("badRevocationReason", 400, d) }
func notFound(d string) *Problem            { return &Problem{Type: ns + "malformed", Detail: d, Status: 404} }
func serverInternal(d string) *Problem      { return prob("serverInternal", 500, d) }
func incorrectResponse(d string) *Problem   { return prob("incorrectResponse", 403, d) }
func connectionProblem(d string) *Problem   { return prob("connection", 400, d) }
func dnsProblem(d string) *Problem          { return prob("dns", 400, d) }
func tlsProblem(d string) *Problem          { return prob("tls", 400, d) }
func externalAccountRequired(d string) *Problem {
	return prob("externalAccountRequired", 403, d)
}

// alreadyReplaced refuses an order whose "replaces" names a certificate
// replaced before (RFC 9773 §5, §7.4); clients then order without it.
func alreadyReplaced(d string) *Problem { return prob("alreadyReplaced", http.StatusConflict, d) }

// invalidProfile refuses an order for a profile the directory does not
// offer (draft-ietf-acme-profiles).
func invalidProfile(d string) *Problem { return prob("invalidProfile", 400, d) }

func unsupportedIdentifier(d string) *Problem { return prob("unsupportedIdentifier", 400, d) }

// toProblem is the one mapping from CA error kinds to ACME problems.
func toProblem(err error) *Problem {
	// A problem returned from inside a store update comes back wrapped
	// with the store's context.
	if p, ok := errors.AsType[*Problem](err); ok {
		return p
	}
	d := errs.DetailOf(err)
	switch errs.KindOf(err) {
	case errs.Malformed:
		return malformed(d)
	case errs.TooLarge:
		p := malformed(d) // ACME has no type of its own for it
		p.Status = http.StatusRequestEntityTooLarge
		return p
	case errs.BadCSR:
		return badCSR(d)
	case errs.Unauthorized, errs.Forbidden, errs.NotFound:
		return unauthorized(d)
	case errs.RejectedIdentifier:
		return rejectedIdentifier(d)
	case errs.AlreadyRevoked:
		return alreadyRevoked(d)
	case errs.BadRevocationReason:
		return badRevocationReason(d)
	case errs.Conflict:
		return malformed(d)
	case errs.RateLimited:
		return prob("rateLimited", 429, d)
	case errs.Unavailable:
		return prob("serverInternal", 503, d)
	}
	return serverInternal(d)
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := toProblem(err)
	if d := errs.RetryAfterOf(err); d > 0 {
		w.Header().Set("Retry-After", errs.RetryAfterSeconds(d))
	}
	if l := errs.LimitOf(err); l != "" && s.d.Limited != nil {
		s.d.Limited(l)
	}
	if p.Status >= 500 {
		s.log.ErrorContext(r.Context(), "acme internal error", "err", err, "path", r.URL.Path)
	} else {
		s.log.DebugContext(r.Context(), "acme problem", "type", p.Type, "detail", p.Detail, "path", r.URL.Path)
	}
	respond.JSON(w, p.Status, "application/problem+json", p)
}

// badSignatureAlgorithm refuses a JWS algorithm, naming those accepted in
// the detail and in the algorithms field.
func badSignatureAlgorithm(alg string) *Problem {
	algs := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		algs[i] = string(a)
	}
	p := prob("badSignatureAlgorithm", 400, fmt.Sprintf("JWS algorithm %q is not accepted (accepted: %s)", alg, strings.Join(algs, ", ")))
	p.Algorithms = algs
	return p
}
