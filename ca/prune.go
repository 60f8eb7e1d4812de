package ca

import (
	"context"
	"log/slog"
)

// PruneInBatches runs a store prune (step deletes at most max objects and
// says how many) in transactions of batch objects (inBatches), and
// logs what it did: how many it deleted, or why it failed, unless ctx
// ended (the server stopping). A failure costs nothing but time: what was
// not deleted is deleted by the next call. Every duty that prunes the
// store (ACME objects, tokens, the CRL list) calls it; attrs say which
// objects.
func PruneInBatches(ctx context.Context, log *slog.Logger, what string, batch int, step func(max int) (int, error), attrs ...any) {
	total, err := inBatches(batch, step)
	if err != nil && ctx.Err() == nil {
		log.Error("prune "+what+"; will retry", append(attrs[:len(attrs):len(attrs)], "err", err)...)
	}
	if total > 0 {
		log.Info("pruned "+what, append(attrs[:len(attrs):len(attrs)], "count", total)...)
	}
}

// inBatches runs step (a prune of at most max objects, saying how many it
// deleted) until it deletes fewer than max or fails, and returns how many
// it deleted in all. A store's prunes run as many short transactions so
// that issuance, sharing the store's writer, never waits long behind one.
func inBatches(max int, step func(max int) (int, error)) (int, error) {
	total := 0
	for {
		n, err := step(max)
		total += n
		if err != nil || n < max {
			return total, err
		}
	}
}
