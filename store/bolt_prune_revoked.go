package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneRevoked implements Store: a read finds at most max due entries,
// and deleteFound deletes them (one another pruner took first is not
// counted).
func (b *Bolt) PruneRevoked(ctx context.Context, issuer string, expiredBefore, revokedBefore time.Time, max int) (int, error) {
	due := func(v []byte) bool {
		e, err := decodeRevoked(v)
		return err == nil && e.NotAfter.Before(expiredBefore) && e.RevokedAt.Before(revokedBefore)
	}
	var keys [][]byte
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRevoked).Cursor()
		prefix := idxKey(issuer, nil)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < max; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if due(v) {
				keys = append(keys, bytes.Clone(k))
			}
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return 0, wrapPrune(issuer, err)
	}
	n, err := b.deleteFound(ctx, keys, func(tx *bolt.Tx, k []byte) (bool, error) {
		revoked := tx.Bucket(bRevoked)
		if v := revoked.Get(k); v == nil || !due(v) {
			return false, nil
		}
		return true, revoked.Delete(k)
	})
	if err != nil {
		return 0, wrapPrune(issuer, err)
	}
	return n, nil
}

// deleteFound is the write half of a prune that searched in a read
// transaction, outside the commit loop: one write through the loop calls
// del on each key found, and del reads its key again in that transaction
// (another pruner, or a change since the read, may have made it not due)
// and reports whether it deleted. So issuance waits behind at most the
// deletions, never behind the search.
func (b *Bolt) deleteFound(ctx context.Context, keys [][]byte, del func(tx *bolt.Tx, k []byte) (bool, error)) (int, error) {
	var n int
	err := b.write(ctx, func(tx *bolt.Tx) error {
		n = 0 // fn may run again when its group is retried
		for _, k := range keys {
			deleted, err := del(tx, k)
			if err != nil {
				return err
			}
			if deleted {
				n++
			}
		}
		return nil
	})
	return n, err
}

func wrapPrune(issuer string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("prune CRL list of %s: %w", issuer, err)
}
