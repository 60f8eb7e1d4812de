package acme

import (
	"encoding/json"
	"errors"
	"net/http"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/internal/audit"
	"pkid/store"
)

// keyChange rolls an account over to a new key (RFC 8555 §7.3.5): the
// outer JWS is signed by the old key (kid), the inner by the new key (jwk)
// over {account, oldKey}, with the same url and no nonce.
func (s *Server) keyChange(w http.ResponseWriter, r *http.Request) {
	req, err := s.verify(r, kidOnly)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	inner, err := jose.ParseSignedJSON(string(req.payload), allowedAlgs)
	if err != nil || len(inner.Signatures) != 1 {
		s.writeProblem(w, r, malformed("keyChange payload must be a JWS signed by the new key"))
		return
	}
	h := inner.Signatures[0].Protected
	if h.JSONWebKey == nil || h.KeyID != "" {
		s.writeProblem(w, r, malformed("the inner JWS must carry the new key as jwk (and no kid)"))
		return
	}
	if h.Nonce != "" {
		s.writeProblem(w, r, malformed("the inner JWS must not carry a nonce"))
		return
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != s.requestURL(r) {
		s.writeProblem(w, r, malformed("the inner JWS url must equal the outer one"))
		return
	}
	if err := checkKey(h.JSONWebKey); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	payload, err := inner.Verify(h.JSONWebKey)
	if err != nil {
		s.writeProblem(w, r, malformed("the inner JWS signature does not verify with its jwk"))
		return
	}
	var b struct {
		Account string          `json:"account"`
		OldKey  json.RawMessage `json:"oldKey"`
	}
	if err := json.Unmarshal(payload, &b); err != nil {
		s.writeProblem(w, r, malformed("inner payload must be {account, oldKey}"))
		return
	}
	if b.Account != s.link.account(req.role, req.account.ID) {
		s.writeProblem(w, r, malformed("inner payload account is not the account signing the outer JWS"))
		return
	}
	var old jose.JSONWebKey
	if err := old.UnmarshalJSON(b.OldKey); err != nil {
		s.writeProblem(w, r, malformed("oldKey is not a JWK"))
		return
	}
	oldTP, err1 := thumbprint(&old)
	newTP, err2 := thumbprint(h.JSONWebKey)
	if err1 != nil || err2 != nil || oldTP != req.account.KeyThumbprint {
		s.writeProblem(w, r, unauthorized("oldKey is not the account's current key"))
		return
	}
	if err := s.notBlocked(r.Context(), h.JSONWebKey); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	newJWK, err := h.JSONWebKey.MarshalJSON()
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	acct, err := s.d.Store.UpdateAccount(r.Context(), req.account.ID, func(a *store.ACMEAccount) error {
		a.KeyThumbprint, a.JWK = newTP, newJWK
		return nil
	})
	if errors.Is(err, store.ErrDuplicate) {
		if other, gerr := s.d.Store.GetAccountByKey(r.Context(), req.role, newTP); gerr == nil {
			w.Header().Set("Location", s.link.account(req.role, other.ID))
		}
		p := prob("conflict", http.StatusConflict, "the new key already belongs to another account")
		p.Type = ns + "malformed"
		s.writeProblem(w, r, p)
		return
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if s.d.KeyChanged != nil {
		s.d.KeyChanged(r.Context(), acct.ID, oldTP, newJWK, newTP)
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "acme.account.keychange", Requester: accountRequester(acct.ID), Role: req.role, Outcome: "accepted"})
	w.Header().Set("Location", s.link.account(req.role, acct.ID))
	writeJSON(w, http.StatusOK, s.viewAccount(acct))
}
