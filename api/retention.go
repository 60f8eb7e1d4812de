package api

import (
	"context"
	"log/slog"
	"time"

	"pkid/ca"
	"pkid/store"
)

// certPruneBatch bounds each transaction of the record prune, so that
// issuance waits behind a few hundred deletions at most.
const certPruneBatch = 500

// pruneCertificates deletes the records of certificates that expired
// before the cut (storage.retention ago), a bounded stretch of the store
// per call (see Store.PruneCertificates).
func pruneCertificates(ctx context.Context, st store.Store, before time.Time, log *slog.Logger) {
	ca.PruneInBatches(ctx, log, "records of certificates past storage.retention", certPruneBatch, func(max int) (int, error) {
		return st.PruneCertificates(ctx, before, max)
	}, "expired_before", before.UTC().Format(time.RFC3339))
}
