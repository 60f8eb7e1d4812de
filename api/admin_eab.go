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

// EABView is an external account binding key as the admin commands show
// it: never its HMAC key, which exists only in the one line create prints.
type EABView struct {
	KID       string    `json:"kid"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	AccountID string    `json:"account_id,omitempty"`
}

// ListEAB lists the binding keys in st, oldest first.
func ListEAB(ctx context.Context, st store.ACMEStore) ([]EABView, error) {
	keys, err := st.ListEABKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]EABView, 0, len(keys))
	for _, k := range keys {
		out = append(out, EABView{KID: k.KID, Role: k.Role, CreatedAt: k.CreatedAt, UsedAt: k.UsedAt, AccountID: k.AccountID})
	}
	return out, nil
}

// RevokeEAB withdraws the unused binding key kid, with the problem an
// operator can act on when it cannot be: no such key, or one an account
// was already bound with (withdrawing the key would not undo the account).
func RevokeEAB(ctx context.Context, st store.ACMEStore, kid string) error {
	err := st.DeleteEABKey(ctx, kid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errs.New(errs.NotFound, "no external account binding key %s", kid)
	case errors.Is(err, store.ErrStale):
		k, gerr := st.GetEABKey(ctx, kid)
		if gerr != nil {
			return gerr
		}
		return errs.New(errs.Conflict, "external account binding key %s was used at %s by ACME account %s; withdrawing the key would not undo that account", kid, k.UsedAt.UTC().Format(time.RFC3339), k.AccountID)
	}
	return err
}

// adminListEAB and adminRevokeEAB reach the keys through the EAB keeper's
// store, as adminEAB creates them.
func (s *Server) adminListEAB(w http.ResponseWriter, r *http.Request) {
	out, err := ListEAB(r.Context(), s.opts.EAB.Store)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) adminRevokeEAB(w http.ResponseWriter, r *http.Request) {
	kid := mux.Vars(r)["kid"]
	if err := RevokeEAB(r.Context(), s.opts.EAB.Store, kid); err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.withdrew(r.Context(), adminSocket, "", WithdrawnEAB, kid)
	w.WriteHeader(http.StatusNoContent)
}
