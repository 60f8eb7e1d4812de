package ca

import (
	"context"
	"slices"
	"strings"
	"time"

	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// Allowed reports, without spending one, whether requester has a
// certificate left under roleName's rate limit: ACME asks at newOrder,
// before any validation work is done for an order that could not be
// finalized.
func (a *Authority) Allowed(ctx context.Context, roleName, requester string) error {
	role := a.Role(roleName)
	if role == nil {
		return nil
	}
	return a.allowance(ctx, role, &SignRequest{Requester: requester}, nil, false)
}

// allowance spends (or, with spend false, looks for) one certificate of
// req's credential under role's rate limit, refusing with RateLimited and
// the wait when none is left. The credential is the requester (an API
// token's name, an OIDC identity, an ACME account); for an mTLS renewal,
// whose requester is each time the certificate being renewed, it is the
// names (dec's) that the chain of renewals keeps. The count is kept in
// the store, so replicas share it and a restart forgets nothing.
func (a *Authority) allowance(ctx context.Context, role *policies.Role, req *SignRequest, dec *policies.Decision, spend bool) error {
	l := role.RateLimit
	if l == nil {
		return nil
	}
	key, who := role.Name+"\x00"+req.Requester, req.Requester
	if req.Via == store.ViaRenew && dec != nil {
		names := slices.Sorted(slices.Values(dec.Names()))
		key, who = role.Name+"\x00names:"+strings.Join(names, ","), "renewals of "+strings.Join(names, ", ")
	}
	wait, err := a.TakeAllowance(ctx, key, l.Certificates, l.Per, spend)
	if err != nil || wait == 0 {
		return err
	}
	return errs.Limited("roles."+role.Name+".rate_limit", wait, "role %q allows %d certificates per %s to one credential, and %s has had them; the next is allowed in %s", role.Name, l.Certificates, l.Per, who, errs.Rounded(wait))
}

// TakeAllowance spends (spend) or looks for one of n per `per` under key,
// on the CA's clock, in the store's count (store.Store.TakeAllowance),
// and returns how long until one is left (0: there was). Roles' rate
// limits count with it, and so does ACME's bound on failed validations.
func (a *Authority) TakeAllowance(ctx context.Context, key string, n int, per time.Duration, spend bool) (time.Duration, error) {
	return a.d.Store.TakeAllowance(ctx, key, n, per, a.d.Clock.Now(), spend)
}

// allowancePruneBatch bounds one prune transaction, so issuance sharing
// the store's writer never waits long behind it.
const allowancePruneBatch = 500

// PruneAllowances deletes the rate-limit counts that are whole again,
// which read the same as none; serve runs it every tick. Several replicas
// may run it at once: deleting is idempotent.
func (a *Authority) PruneAllowances(ctx context.Context) {
	now := a.d.Steady.Now()
	PruneInBatches(ctx, a.d.Log, "whole rate-limit allowances", allowancePruneBatch, func(max int) (int, error) {
		return a.d.Store.PruneAllowances(ctx, now, max)
	}, "whole_before", now.UTC().Format(time.RFC3339))
}
