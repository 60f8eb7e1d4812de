package acme

import (
	"context"
	"time"

	"pkid/ca"
)

// Retention is how long an expired order or authorization is kept (for an
// operator asking why an order failed; the audit log keeps the outcome for
// good) before Run deletes it. Certificates are never pruned: they live
// in the certificate records, not in their orders.
const Retention = 7 * 24 * time.Hour

// pruneBatch bounds one prune transaction, so issuance sharing the commit
// loop never waits long behind it.
const pruneBatch = 500

// Run prunes orders and authorizations expired for longer than Retention,
// checking the injected clock every tick, until ctx ends. Without it the
// store would keep every order ever placed. Several replicas may run it at
// once: deleting is idempotent.
func (s *Server) Run(ctx context.Context, tick time.Duration) {
	ca.EveryTick(ctx, tick, s.prune)
}

func (s *Server) prune(ctx context.Context) {
	before := s.d.CA.Steady().Now().Add(-Retention)
	ca.PruneInBatches(ctx, s.log, "expired ACME orders and authorizations", pruneBatch, func(max int) (int, error) {
		return s.d.Store.PruneACME(ctx, before, max)
	}, "expired_before", before.UTC().Format(time.RFC3339))
}
