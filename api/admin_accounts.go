package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"pkid/errs"
	"pkid/store"
)

// RevokeACMEAccount ends an ACME account from the CA's side (RFC 8555
// §7.1.6: "revoked", a deactivation the server made): whoever holds its
// key (it leaked, or the client was retired) can use it no more, nor its
// valid authorizations, and the key registers no other account in the
// role. Its certificates stay valid until they are revoked themselves
// (`pkid cert list --requester acme:ID` lists them).
func RevokeACMEAccount(ctx context.Context, st store.ACMEStore, id string) (*store.ACMEAccount, error) {
	acct, err := st.UpdateAccount(ctx, id, func(a *store.ACMEAccount) error {
		if a.Status != store.ACMEValid {
			return errs.New(errs.Conflict, "ACME account %s is already %s", id, a.Status)
		}
		a.Status = store.ACMERevoked
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "no ACME account %s", id)
	}
	if err != nil {
		return nil, err
	}
	return acct, nil
}

// AccountView is an ACME account as the admin commands show it: never its
// key, only the key's RFC 7638 thumbprint.
type AccountView struct {
	ID            string    `json:"id"`
	Role          string    `json:"role"`
	Status        string    `json:"status"`
	Contact       []string  `json:"contact,omitempty"`
	EABKeyID      string    `json:"eab_kid,omitempty"`
	KeyThumbprint string    `json:"key_thumbprint"`
	CreatedAt     time.Time `json:"created_at"`
	// Source is the client address that registered it (an IPv6 one's
	// /64): which host a client runs on.
	Source string `json:"source,omitempty"`
}

// ListACMEAccounts lists the accounts of role ("" for all), oldest first.
func ListACMEAccounts(ctx context.Context, st store.ACMEStore, role string) ([]AccountView, error) {
	accts, err := st.ListAccounts(ctx, role)
	if err != nil {
		return nil, err
	}
	out := make([]AccountView, 0, len(accts))
	for _, a := range accts {
		out = append(out, AccountView{ID: a.ID, Role: a.Role, Status: a.Status, Contact: a.Contact, EABKeyID: a.EABKeyID, KeyThumbprint: a.KeyThumbprint, CreatedAt: a.CreatedAt, Source: a.Source})
	}
	return out, nil
}

func (s *Server) adminListAccounts(w http.ResponseWriter, r *http.Request) {
	q, err := strictQuery(r.URL.RawQuery, "role")
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	out, err := ListACMEAccounts(r.Context(), s.opts.EAB.Store, q.Get("role"))
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) adminRevokeAccount(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	acct, err := RevokeACMEAccount(r.Context(), s.opts.EAB.Store, id)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.withdrew(r.Context(), adminSocket, acct.Role, WithdrawnAccount, acct.ID)
	w.WriteHeader(http.StatusNoContent)
}
