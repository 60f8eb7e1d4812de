package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"pkid/internal/audit"
	"pkid/store"
)

// EABVerifier checks an external account binding (RFC 8555 §7.3.4) for a
// role and consumes it: each binding is single-use. It returns the key ID.
type EABVerifier interface {
	VerifyBinding(ctx context.Context, role, accountID string, binding json.RawMessage, accountJWK *jose.JSONWebKey, newAccountURL string) (string, error)
}

type accountBody struct {
	Contact                []string        `json:"contact"`
	TermsOfServiceAgreed   bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
	Status                 string          `json:"status"`
}

type accountView struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact,omitempty"`
	Orders  string   `json:"orders"`
}

// accountRequester is how records and audit lines name an ACME account:
// a certificate whose Requester it is was ordered by that account.
func accountRequester(id string) string { return "acme:" + id }

func (s *Server) viewAccount(a *store.ACMEAccount) accountView {
	return accountView{Status: a.Status, Contact: a.Contact, Orders: s.link.orders(a.Role, a.ID)}
}

func checkContacts(cs []string) error {
	for _, c := range cs {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return prob("unsupportedContact", 400, "contact "+c+": only mailto: contacts are supported")
		}
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr || strings.ContainsAny(addr, ",?") {
			return prob("invalidContact", 400, "contact "+c+" is not a plain email address")
		}
	}
	return nil
}

func (s *Server) newAccount(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, jwkOnly)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	var b accountBody
	if err := json.Unmarshal(req.payload, &b); err != nil {
		s.writeProblem(w, r, malformed("newAccount payload is not a JSON object: "+err.Error()))
		return
	}
	tp, err := thumbprint(req.jwk)
	if err != nil {
		s.writeProblem(w, r, badPublicKey("cannot compute the key thumbprint"))
		return
	}
	// A blocked key neither registers nor finds its account again.
	if err := s.notBlocked(r.Context(), req.jwk); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	existing, err := s.d.Store.GetAccountByKey(r.Context(), req.role, tp)
	switch {
	case err == nil:
		w.Header().Set("Location", s.link.account(req.role, existing.ID))
		writeJSON(w, http.StatusOK, s.viewAccount(existing))
		return
	case !errors.Is(err, store.ErrNotFound):
		s.writeProblem(w, r, err)
		return
	}
	if b.OnlyReturnExisting {
		s.writeProblem(w, r, accountDoesNotExist("no account exists for this key"))
		return
	}
	if err := checkContacts(b.Contact); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	acct := &store.ACMEAccount{ID: newID(s.d.Clock.Now()), Role: req.role, KeyThumbprint: tp, Contact: b.Contact, Status: store.ACMEValid, CreatedAt: s.d.Clock.Now().UTC(), Source: clientSource(r)}
	// A binding is a key an operator made for one account, which bounds
	// registrations already: only those without one are counted against.
	if !req.rl.ACME.RequireEAB && len(b.ExternalAccountBinding) == 0 {
		if err := s.tooManyAccounts(r.Context(), acct.Source); err != nil {
			s.writeProblem(w, r, err)
			return
		}
	}
	if req.rl.ACME.RequireEAB || len(b.ExternalAccountBinding) > 0 {
		if len(b.ExternalAccountBinding) == 0 {
			s.writeProblem(w, r, externalAccountRequired("role "+req.role+" requires an external account binding; create one with pkid acme eab create --role "+req.role))
			return
		}
		if s.d.EAB == nil {
			s.writeProblem(w, r, malformed("external account bindings are not configured"))
			return
		}
		kid, err := s.d.EAB.VerifyBinding(r.Context(), req.role, acct.ID, b.ExternalAccountBinding, req.jwk, s.link.newAccount(req.role))
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		acct.EABKeyID = kid
	}
	if acct.JWK, err = req.jwk.MarshalJSON(); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if err := s.d.Store.CreateAccount(r.Context(), acct); err != nil {
		// Another newAccount with this key got there first: this one
		// finds that account, as it would have a moment later.
		if errors.Is(err, store.ErrDuplicate) {
			if existing, gerr := s.d.Store.GetAccountByKey(r.Context(), req.role, tp); gerr == nil {
				w.Header().Set("Location", s.link.account(req.role, existing.ID))
				writeJSON(w, http.StatusOK, s.viewAccount(existing))
				return
			}
		}
		s.writeProblem(w, r, err)
		return
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "acme.account.create", Requester: accountRequester(acct.ID), Role: req.role, Outcome: "accepted"})
	w.Header().Set("Location", s.link.account(req.role, acct.ID))
	writeJSON(w, http.StatusCreated, s.viewAccount(acct))
}

// ownAccount checks that the kid of req is the account named in the URL.
func (s *Server) ownAccount(r *http.Request, req *request) error {
	if req.account.ID != mux.Vars(r)["id"] {
		return unauthorized("the JWS kid is not this account")
	}
	return nil
}

// account is POST-as-GET, contact update or deactivation.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	if err == nil {
		err = s.ownAccount(r, req)
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	acct := req.account
	if !req.postAsGet {
		var b accountBody
		if err := json.Unmarshal(req.payload, &b); err != nil {
			s.writeProblem(w, r, malformed("account update is not a JSON object: "+err.Error()))
			return
		}
		if b.Status != "" && b.Status != store.ACMEDeactivated {
			s.writeProblem(w, r, malformed("an account's status may only be set to deactivated"))
			return
		}
		if b.Contact != nil {
			if err := checkContacts(b.Contact); err != nil {
				s.writeProblem(w, r, err)
				return
			}
		}
		acct, err = s.d.Store.UpdateAccount(r.Context(), acct.ID, func(a *store.ACMEAccount) error {
			if b.Contact != nil {
				a.Contact = b.Contact
			}
			if b.Status == store.ACMEDeactivated {
				a.Status = store.ACMEDeactivated
			}
			return nil
		})
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		if b.Status == store.ACMEDeactivated {
			if s.d.Deactivated != nil {
				s.d.Deactivated(r.Context(), acct.ID)
			}
			audit.Log(r.Context(), s.log, audit.Entry{Event: "acme.account.deactivate", Requester: accountRequester(acct.ID), Role: req.role, Outcome: "accepted"})
		}
	}
	w.Header().Set("Location", s.link.account(req.role, acct.ID))
	writeJSON(w, http.StatusOK, s.viewAccount(acct))
}

// orders lists an account's orders (RFC 8555 §7.1.2.1).
func (s *Server) orders(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	if err == nil {
		err = s.ownAccount(r, req)
	}
	if err == nil && !req.postAsGet {
		err = malformed("the orders list is read with POST-as-GET (an empty payload)")
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	cursor := r.URL.Query().Get("cursor")
	ids, next, err := s.d.Store.ListOrders(r.Context(), req.account.ID, cursor, ordersPage)
	if errors.Is(err, store.ErrNotFound) {
		err = malformed(fmt.Sprintf("cursor %q is not one this server gave; start from the account's orders URL", cursor))
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	urls := make([]string, 0, len(ids))
	for _, id := range ids {
		// RFC 8555 §7.1.2.1: pending orders in, invalid ones (failed,
		// expired, interrupted) out, so a page may come back short.
		o, err := s.d.Store.GetOrder(r.Context(), id)
		if err == nil {
			o, err = s.refreshOrder(r, o)
		}
		if errors.Is(err, store.ErrNotFound) {
			continue // pruned since it was listed
		}
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		if o.Status != store.ACMEInvalid {
			urls = append(urls, s.link.order(req.role, id))
		}
	}
	if next != "" {
		w.Header().Add("Link", `<`+s.link.orders(req.role, req.account.ID)+"?cursor="+next+`>;rel="next"`)
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": urls})
}

// ordersPage is how many of an account's orders one page of its orders
// list looks at (listing those not invalid); a Link rel="next" leads to
// the next page (RFC 8555 §7.1.2.1).
const ordersPage = 100

// accountKeyNotBlocked refuses every request of an account whose key a
// keyCompromise revocation has since blocked: whoever holds the key now
// need not be the account's owner, and the account's valid authorizations
// would let them order certificates for its names without proving control.
// (Boulder revokes such accounts for the same reason.) The certificates'
// holders can still revoke them with their own keys, or an admin through
// the REST API.
func (s *Server) accountKeyNotBlocked(ctx context.Context, keyHash string) error {
	blocked, err := s.d.CA.Store().KeyBlocked(ctx, keyHash)
	if err != nil {
		return err
	}
	if blocked {
		return unauthorized("this account's key is blocked: a certificate for it was revoked for keyCompromise, so the account no longer answers to it; register a new account with a new key")
	}
	return nil
}

// notBlocked refuses, as the key of newAccount (registering or finding an
// account) and the new key of keyChange, a key whose certificate was
// revoked for keyCompromise: whoever holds it now need not be its owner.
// (revokeCert still accepts a JWS signed with it: that is how a leaked key
// gets its certificates revoked.)
func (s *Server) notBlocked(ctx context.Context, k *jose.JSONWebKey) error {
	blocked, err := s.d.CA.KeyBlocked(ctx, k.Key)
	if err != nil {
		return err
	}
	if blocked {
		return badPublicKey("this key is blocked: a certificate for it was revoked for keyCompromise; use a new key")
	}
	return nil
}
