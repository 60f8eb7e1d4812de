package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"pkid/errs"
	"pkid/internal/audit"
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

func (s *Server) adminRevokeAccount(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	acct, err := RevokeACMEAccount(r.Context(), s.opts.EAB.Store, id)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	audit.Log(r.Context(), s.log, audit.Entry{Event: "acme.account.revoke", Requester: adminSocket, Role: acct.Role, Outcome: "revoked"}, "account", acct.ID)
	w.WriteHeader(http.StatusNoContent)
}
