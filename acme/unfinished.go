package acme

import (
	"context"
	"time"

	"pkid/errs"
)

// tooManyUnfinished refuses a new order to an account that has made
// acme.unfinished_orders orders in the last period that did not end in a
// certificate, saying how long until the oldest of them ages out. Each
// order and its authorizations stay in the store until a week after they
// expire, so a client that orders and never validates or finalizes (a
// broken solver, a retry loop) would otherwise grow the store at every
// request; failedTooOften only sees validations that were tried. Orders
// made at once by one account may pass the bound by as many as are in
// flight together: it bounds the store's growth, not a count to the unit.
func (s *Server) tooManyUnfinished(ctx context.Context, account string) error {
	n, per := s.d.UnfinishedOrders, s.d.UnfinishedPer
	if n <= 0 {
		return nil
	}
	wait, err := s.windowFull(n, per, func(since time.Time, max int) (int, time.Time, error) {
		return s.d.Store.UnfinishedOrders(ctx, account, since, max)
	})
	if err != nil || wait == 0 {
		return err
	}
	return errs.Limited("acme.unfinished_orders", wait, "this account has %d orders from the last %s that did not end in a certificate (acme.unfinished_orders): finalize the ready ones, and see the challenge errors of the invalid ones; a new order is allowed in %s",
		n, per, errs.Rounded(wait))
}

// windowFull is how long until one of n things allowed in any per is
// free again: 0 while fewer than n were made in the last per, else until
// the oldest of them is per old (at least a second). count counts, up to
// max, those made at or after since and says when the first was made.
func (s *Server) windowFull(n int, per time.Duration, count func(since time.Time, max int) (int, time.Time, error)) (time.Duration, error) {
	now := s.d.Clock.Now()
	// One exactly per old has aged out, as Retry-After promised.
	got, oldest, err := count(now.Add(-per+time.Nanosecond), n)
	if err != nil || got < n {
		return 0, err
	}
	return max(oldest.Add(per).Sub(now), time.Second), nil
}
