package ca

import (
	"context"
	"log/slog"

	"pkid/store"
)

// PruneInBatches runs a store prune (step deletes at most max objects and
// says how many) in transactions of batch objects (store.InBatches), and
// logs what it did: how many it deleted, or why it failed, unless ctx
// ended (the server stopping). A failure costs nothing but time: what was
// not deleted is deleted by the next call. Every duty that prunes the
// store (ACME objects, tokens, the CRL list) calls it; attrs say which
// objects.
func PruneInBatches(ctx context.Context, log *slog.Logger, what string, batch int, step func(max int) (int, error), attrs ...any) {
	total, err := store.InBatches(batch, step)
	if err != nil && ctx.Err() == nil {
		log.Error("prune "+what+"; will retry", append(attrs[:len(attrs):len(attrs)], "err", err)...)
	}
	if total > 0 {
		log.Info("pruned "+what, append(attrs[:len(attrs):len(attrs)], "count", total)...)
	}
}
