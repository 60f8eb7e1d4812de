package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	// bAllowances: rate-limit key -> its tat (see gcra).
	bAllowances = []byte("rate_allowances")
	// bAllowanceExpiry orders the keys by tat for PruneAllowances:
	// expiryKey(tat, key) -> nil.
	bAllowanceExpiry = []byte("rate_allowance_expiry")
)

// TakeAllowance implements Store. A refusal is one read; only a spent
// allowance writes, through the commit loop, and is checked again there.
func (b *Bolt) TakeAllowance(ctx context.Context, key string, certificates int, per time.Duration, now time.Time, spend bool) (time.Duration, error) {
	k := []byte(key)
	var wait time.Duration
	if err := b.db.View(func(tx *bolt.Tx) error {
		_, wait = gcra(decodeTAT(tx.Bucket(bAllowances).Get(k)), now, certificates, per)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("allowance %s: %w", key, err)
	}
	if wait > 0 || !spend {
		return wait, nil
	}
	err := b.write(ctx, func(tx *bolt.Tx) error {
		bk, idx := tx.Bucket(bAllowances), tx.Bucket(bAllowanceExpiry)
		old := bk.Get(k)
		var next time.Time
		if next, wait = gcra(decodeTAT(old), now, certificates, per); wait > 0 {
			return nil
		}
		if old != nil {
			if err := idx.Delete(expiryKey(decodeTAT(old), key)); err != nil {
				return err
			}
		}
		if err := idx.Put(expiryKey(next, key), nil); err != nil {
			return err
		}
		return bk.Put(k, encodeTAT(next))
	})
	if err != nil {
		return 0, fmt.Errorf("take an allowance of %q: %w", key, err)
	}
	return wait, nil
}

// PruneAllowances implements Store. A call with nothing due is one read.
func (b *Bolt) PruneAllowances(ctx context.Context, now time.Time, max int) (int, error) {
	n, err := b.pruneExpired(ctx, bAllowanceExpiry, now, max, func(tx *bolt.Tx, k, _ []byte) error {
		bk := tx.Bucket(bAllowances)
		key := k[8:]
		if v := bk.Get(key); v != nil && bytes.Equal(expiryKey(decodeTAT(v), string(key)), k) {
			return bk.Delete(key)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune allowances whole before %s: %w", now.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}
