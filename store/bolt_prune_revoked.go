package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneRevoked implements Store. The search is a read, outside the commit
// loop; the write deletes only the keys found, each read again in its
// transaction (another pruner may have taken it first: it is not
// counted), so issuance waits behind at most max deletions, never behind
// a scan.
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
	var n int
	err = b.write(ctx, func(tx *bolt.Tx) error {
		n = 0 // fn may run again when its group is retried
		revoked := tx.Bucket(bRevoked)
		for _, k := range keys {
			if v := revoked.Get(k); v != nil && due(v) {
				if err := revoked.Delete(k); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrapPrune(issuer, err)
	}
	return n, nil
}

func wrapPrune(issuer string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("prune CRL list of %s: %w", issuer, err)
}
