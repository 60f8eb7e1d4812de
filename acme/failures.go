package acme

import (
	"context"

	"pkid/errs"
	"pkid/store"
)

// failedKey is the store allowance key counting the failed validations
// of id by account in role. It starts with a NUL, which no role's rate
// limit key (role name first) does.
func failedKey(role, account string, id store.ACMEIdentifier) string {
	return "\x00acme-failed\x00" + role + "\x00" + account + "\x00" + id.Type + ":" + id.Value
}

// noteFailure spends one of the account's failed validations of id, so a
// client that keeps failing is refused new orders for it (failedTooOften)
// instead of adding an order and its authorizations to the store each
// time. A count that cannot be written is only logged: the validation's
// outcome stands.
func (s *Server) noteFailure(ctx context.Context, role, account string, id store.ACMEIdentifier) {
	if s.d.FailedValidations <= 0 {
		return
	}
	if _, err := s.d.CA.TakeAllowance(ctx, failedKey(role, account, id), s.d.FailedValidations, s.d.FailedPer, true); err != nil {
		s.log.Error("count a failed validation", "account", account, "identifier", id.Type+":"+id.Value, "err", err)
	}
}

// failedTooOften refuses a new authorization of id to an account that has
// failed to validate it acme.failed_validations times, with how long until
// it may try again (Let's Encrypt has the same limit, at 5 an hour).
func (s *Server) failedTooOften(ctx context.Context, role, account string, id store.ACMEIdentifier) error {
	if s.d.FailedValidations <= 0 {
		return nil
	}
	wait, err := s.d.CA.TakeAllowance(ctx, failedKey(role, account, id), s.d.FailedValidations, s.d.FailedPer, false)
	if err != nil || wait == 0 {
		return err
	}
	return errs.Limited("acme.failed_validations", wait, "this account failed to validate %s %s %d times in %s (acme.failed_validations); the challenge errors of its earlier authorizations say why; a new order for it is allowed in %s",
		id.Type, id.Value, s.d.FailedValidations, s.d.FailedPer, errs.Rounded(wait))
}
