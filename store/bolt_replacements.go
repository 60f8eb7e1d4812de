package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ReplacementOrder implements ACMEStore.
func (b *Bolt) ReplacementOrder(_ context.Context, serial string) (string, error) {
	var id string
	if err := b.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bReplacements).Get([]byte(serial)))
		return nil
	}); err != nil {
		return "", fmt.Errorf("replacement order of %s: %w", serial, err)
	}
	if id == "" {
		return "", fmt.Errorf("replacement order of %s: %w", serial, ErrNotFound)
	}
	return id, nil
}

// ClaimReplacement implements ACMEStore.
func (b *Bolt) ClaimReplacement(ctx context.Context, serial, prev, order string) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		claims := tx.Bucket(bReplacements)
		if held := string(claims.Get([]byte(serial))); held != prev {
			return fmt.Errorf("order %s holds it, not %q: %w", held, prev, ErrStale)
		}
		return claims.Put([]byte(serial), []byte(order))
	})
	if err != nil {
		return fmt.Errorf("claim the replacement of %s for order %s: %w", serial, order, err)
	}
	return nil
}

// dropClaim deletes the claim of the order stored under id, if it still
// holds one, before PruneACME deletes the order.
func dropClaim(tx *bolt.Tx, id []byte) error {
	raw := tx.Bucket(bOrders).Get(id)
	if raw == nil {
		return nil
	}
	o, err := decodeJSON[ACMEOrder](id, raw)
	if err != nil || o.ReplacesSerial == "" {
		return err
	}
	claims := tx.Bucket(bReplacements)
	if string(claims.Get([]byte(o.ReplacesSerial))) != o.ID {
		return nil
	}
	return claims.Delete([]byte(o.ReplacesSerial))
}
