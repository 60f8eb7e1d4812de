package acme

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"pkid/policies"
	"pkid/store"
)

// Ident is an ACME identifier on the wire.
type Ident = store.ACMEIdentifier

type orderView struct {
	Status         string          `json:"status"`
	Expires        string          `json:"expires"`
	Identifiers    []Ident         `json:"identifiers"`
	Authorizations []string        `json:"authorizations"`
	Finalize       string          `json:"finalize"`
	Certificate    string          `json:"certificate,omitempty"`
	Error          json.RawMessage `json:"error,omitempty"`
	// Replaces echoes the order's "replaces" (RFC 9773 §5: MUST).
	Replaces string `json:"replaces,omitempty"`
	// Profile echoes the profile the order asked for.
	Profile string `json:"profile,omitempty"`
}

func (s *Server) viewOrder(o *store.ACMEOrder) orderView {
	v := orderView{Status: o.Status, Expires: o.Expires.UTC().Format(time.RFC3339), Identifiers: o.Identifiers, Finalize: s.link.finalize(o.Role, o.ID), Error: o.Error, Replaces: o.Replaces, Profile: o.Profile}
	for _, id := range o.AuthzIDs {
		v.Authorizations = append(v.Authorizations, s.link.authz(o.Role, id))
	}
	if o.CertSerial != "" {
		v.Certificate = s.link.cert(o.Role, o.CertSerial)
	}
	return v
}

type newOrderBody struct {
	Identifiers []Ident `json:"identifiers"`
	NotBefore   string  `json:"notBefore"`
	NotAfter    string  `json:"notAfter"`
	// Replaces is the RFC 9773 certificate identifier of the certificate
	// this order is to replace.
	Replaces string `json:"replaces"`
	// Profile, if given, must be the directory's role: the only profile
	// it offers.
	Profile string `json:"profile"`
}

// canonicalIdent checks an identifier's syntax and returns it in the form
// certificates carry (lower case DNS, canonical IP text).
func canonicalIdent(id Ident) (Ident, error) {
	switch id.Type {
	case "dns":
		if id.Value == "" {
			return id, malformed("empty dns identifier")
		}
		return Ident{Type: "dns", Value: policies.NormalizeDNS(id.Value)}, nil
	case "ip":
		a, err := netip.ParseAddr(id.Value)
		if err != nil || a.Zone() != "" {
			return id, malformed("ip identifier " + id.Value + " is not an IP address")
		}
		return Ident{Type: "ip", Value: a.String()}, nil
	}
	return id, unsupportedIdentifier("identifier type " + id.Type + " is not supported (dns, ip)")
}

func (s *Server) newOrder(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	var b newOrderBody
	if err := json.Unmarshal(req.payload, &b); err != nil {
		s.writeProblem(w, r, malformed("newOrder payload is not a JSON object: "+err.Error()))
		return
	}
	if b.Profile != "" && b.Profile != req.role {
		s.writeProblem(w, r, invalidProfile(fmt.Sprintf("this directory offers profile %q only, its role; each role is a profile with a directory of its own (/acme/<role>/directory), and %q is not this one", req.role, b.Profile)))
		return
	}
	if b.NotBefore != "" || b.NotAfter != "" {
		s.writeProblem(w, r, malformed("notBefore/notAfter are not supported: validity comes from the role ("+req.rl.DefaultTTL.String()+")"))
		return
	}
	if len(b.Identifiers) == 0 || len(b.Identifiers) > policies.MaxNames {
		s.writeProblem(w, r, malformed(fmt.Sprintf("an order needs 1 to %d identifiers, not %d", policies.MaxNames, len(b.Identifiers))))
		return
	}
	var idents []Ident
	var subs []*Problem
	for _, raw := range b.Identifiers {
		id, err := canonicalIdent(raw)
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		if slices.Contains(idents, id) {
			continue
		}
		if why := policies.CheckIdentifier(req.rl, id.Type, id.Value); why != "" {
			p := rejectedIdentifier(fmt.Sprintf("%s %s: %s", id.Type, id.Value, why))
			p.Identifier = &Ident{Type: id.Type, Value: id.Value}
			subs = append(subs, p)
			continue
		}
		// Refused now, not at finalize after the validations: the
		// certificate would break the intermediate's name constraints.
		if why := policies.OutsideConstraint(s.d.CA.Intermediate(), id.Type, id.Value); why != "" {
			p := rejectedIdentifier(fmt.Sprintf("role %q allows it, but %s: no client would accept the certificate", req.role, why))
			p.Identifier = &Ident{Type: id.Type, Value: id.Value}
			subs = append(subs, p)
			continue
		}
		idents = append(idents, id)
	}
	if len(subs) > 0 {
		details := make([]string, len(subs))
		for i, p := range subs {
			details[i] = p.Detail
		}
		p := rejectedIdentifier(fmt.Sprintf("role %q refuses: %s", req.role, strings.Join(details, "; ")))
		p.Subproblems = subs
		s.writeProblem(w, r, p)
		return
	}
	var replacesSerial string
	if b.Replaces != "" {
		var err error
		if replacesSerial, err = s.checkReplaces(r, req, b.Replaces, idents); err != nil {
			s.writeProblem(w, r, err)
			return
		}
	}
	// An account that has used up the role's rate limit is told now,
	// not after its validations, at finalize (which spends the allowance).
	if err := s.d.CA.Allowed(r.Context(), req.role, accountRequester(req.account.ID)); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if err := s.tooManyUnfinished(r.Context(), req.account.ID); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	now := s.d.Clock.Now().UTC()
	o := &store.ACMEOrder{ID: newID(now), AccountID: req.account.ID, Role: req.role, Status: store.ACMEPending, Identifiers: idents, Expires: now.Add(s.d.OrderLifetime), CreatedAt: now,
		Replaces: b.Replaces, ReplacesSerial: replacesSerial, Profile: b.Profile}
	var fresh []*store.ACMEAuthz
	allValid := true
	for _, id := range idents {
		base, wildcard := authzIdent(id)
		if s.d.AuthzReuse > 0 {
			if az, err := s.d.Store.FindValidAuthz(r.Context(), req.account.ID, base, wildcard, now.Add(-s.d.AuthzReuse), now); err == nil {
				o.AuthzIDs = append(o.AuthzIDs, az.ID)
				continue
			}
		}
		allValid = false
		if err := s.failedTooOften(r.Context(), req.role, req.account.ID, base); err != nil {
			s.writeProblem(w, r, err)
			return
		}
		az := &store.ACMEAuthz{ID: newID(now), AccountID: req.account.ID, Role: req.role, Identifier: base, Wildcard: wildcard, Status: store.ACMEPending, Expires: o.Expires}
		for _, typ := range s.challengeTypes(req.rl, base, wildcard) {
			az.Challenges = append(az.Challenges, store.ACMEChallenge{Type: typ, Token: newToken(), Status: store.ACMEPending})
		}
		if len(az.Challenges) == 0 {
			p := rejectedIdentifier(fmt.Sprintf("no challenge of role %q (%s) can validate %s %s", req.role, strings.Join(req.rl.ACME.Challenges, ", "), id.Type, id.Value))
			s.writeProblem(w, r, p)
			return
		}
		fresh = append(fresh, az)
		o.AuthzIDs = append(o.AuthzIDs, az.ID)
	}
	if allValid {
		o.Status = store.ACMEReady
	}
	// Claimed before the order is written: a claim whose order then
	// fails to be written names no order, which counts as none.
	if o.ReplacesSerial != "" {
		if err := s.claimReplacement(r, o); err != nil {
			s.writeProblem(w, r, err)
			return
		}
	}
	if err := s.d.Store.CreateOrder(r.Context(), o, fresh); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	w.Header().Set("Location", s.link.order(req.role, o.ID))
	writeJSON(w, http.StatusCreated, s.viewOrder(o))
}

// authzIdent is what authorizes id: a wildcard DNS name is authorized
// for its base name, with the authorization marked wildcard (RFC 8555
// §7.1.3); any other identifier for itself.
func authzIdent(id Ident) (base Ident, wildcard bool) {
	if id.Type == "dns" && strings.HasPrefix(id.Value, "*.") {
		return Ident{Type: "dns", Value: strings.TrimPrefix(id.Value, "*.")}, true
	}
	return id, false
}

// challengeTypes are the challenges offered for an identifier: those the
// role names and the validator supports, minus the ones RFC 8555 and 8738
// forbid (wildcards only by dns-01, IPs never by dns-01).
func (s *Server) challengeTypes(rl *policies.Role, id Ident, wildcard bool) []string {
	var out []string
	for _, typ := range rl.ACME.Challenges {
		if !s.d.Validator.Supports(typ) {
			continue
		}
		if wildcard && typ != "dns-01" {
			continue
		}
		if id.Type == "ip" && typ == "dns-01" {
			continue
		}
		out = append(out, typ)
	}
	return out
}

// loadOrder fetches an order of the requesting account and brings its
// status up to date from its authorizations.
func (s *Server) loadOrder(r *http.Request, req *request) (*store.ACMEOrder, error) {
	id := mux.Vars(r)["id"]
	o, err := s.d.Store.GetOrder(r.Context(), id)
	if err != nil || o.AccountID != req.account.ID {
		return nil, notFound("no order " + id + " for this account")
	}
	return s.refreshOrder(r, o)
}

// refreshOrder derives an order's current status from its authorizations
// and its expiry. Nothing is written: a pending order whose authorizations
// are all valid reads as ready, one with a failed, deactivated or expired
// authorization reads as invalid, and finalize moves it on with a
// compare-and-swap of the stored status.
func (s *Server) refreshOrder(r *http.Request, o *store.ACMEOrder) (*store.ACMEOrder, error) {
	now := s.d.Clock.Now()
	switch o.Status {
	case store.ACMEPending:
		// Expiry first: an order reusing an authorization can outlive it,
		// and an authorization expired for Retention is pruned.
		if !now.Before(o.Expires) {
			o.Status = store.ACMEInvalid
			return o, nil
		}
		ready := true
		for _, aid := range o.AuthzIDs {
			az, err := s.d.Store.GetAuthz(r.Context(), aid)
			if err != nil {
				return nil, err
			}
			st := az.Status
			if st == store.ACMEValid && !now.Before(az.Expires) {
				st = store.ACMEExpired
			}
			if st == store.ACMEPending {
				ready = false
				continue
			}
			if st != store.ACMEValid {
				o.Status = store.ACMEInvalid
				return o, nil
			}
		}
		if ready {
			o.Status = store.ACMEReady
		}
	case store.ACMEReady:
		if !now.Before(o.Expires) {
			o.Status = store.ACMEInvalid
		}
	case store.ACMEProcessing:
		// Signing takes milliseconds. A certificate committed under the
		// serial finalize reserved makes the order valid even if the CA
		// stopped before writing so; an order still without one after
		// minutes was interrupted before the commit, and would otherwise
		// read processing until it expires.
		if o.PendingSerial != "" {
			rec, err := s.d.CA.Store().GetCertificate(r.Context(), o.PendingSerial)
			switch {
			case err == nil && rec.Requester == accountRequester(o.AccountID):
				o.Status, o.CertSerial = store.ACMEValid, rec.Serial
				return o, nil
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return nil, fmt.Errorf("order %s: look up its certificate %s: %w", o.ID, o.PendingSerial, err)
			}
		}
		if !o.ProcessingSince.IsZero() && now.Sub(o.ProcessingSince) > finalizeDeadline {
			o.Status = store.ACMEInvalid
			detail := "finalization was interrupted (the CA stopped while signing) before a certificate was committed; place a new order"
			if o.PendingSerial == "" {
				detail = "finalization was interrupted (the CA stopped while signing); a certificate it issued is still recorded and revocable; place a new order"
			}
			o.Error, _ = json.Marshal(serverInternal(detail))
		}
	}
	return o, nil
}

// finalizeDeadline is how long an order may read processing before it is
// taken as interrupted.
const finalizeDeadline = 5 * time.Minute

func (s *Server) order(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	if err == nil && !req.postAsGet {
		err = malformed("orders are read with POST-as-GET (an empty payload)")
	}
	var o *store.ACMEOrder
	if err == nil {
		o, err = s.loadOrder(r, req)
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if o.Status == store.ACMEProcessing {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Location", s.link.order(req.role, o.ID))
	writeJSON(w, http.StatusOK, s.viewOrder(o))
}
