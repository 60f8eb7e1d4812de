package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneACME implements ACMEStore. It walks the expiry index from its
// oldest end, so its cost is the objects it deletes, not the store's size.
func (b *Bolt) PruneACME(ctx context.Context, before time.Time, max int) (int, error) {
	n, err := b.pruneExpired(ctx, bACMEExpiry, before, max, func(tx *bolt.Tx, k, v []byte) error {
		if len(k) < 10 {
			return nil
		}
		return pruneOne(tx, k[8], k[9:], v)
	})
	if err != nil {
		return 0, fmt.Errorf("prune ACME objects expired before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// expiryKey is a key of an expiry index (bACMEExpiry, bTokenExpiry): the
// expiry in big-endian Unix seconds (times after 1970 sort as unsigned
// integers, and pruneExpired reads them back), then what the entry names.
func expiryKey(expires time.Time, name string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(name)), uint64(max(expires.Unix(), 0)))
	return append(k, name...)
}

// pruneExpired deletes, oldest first, at most max entries of the expiry
// index idx (keys start with 8 bytes of big-endian Unix seconds) that
// expired before before, calling drop on each to delete what it indexes.
// It runs through the commit loop like every write, in one transaction,
// so issuance never waits long behind it; callers run it every tick, so a
// call with nothing due is one read, no commit.
func (b *Bolt) pruneExpired(ctx context.Context, idx []byte, before time.Time, max int, drop func(tx *bolt.Tx, k, v []byte) error) (int, error) {
	if before.Unix() <= 0 {
		return 0, nil // every index key is at or after 1970
	}
	cut := uint64(before.Unix())
	isDue := func(k []byte) bool { return len(k) > 8 && binary.BigEndian.Uint64(k[:8]) < cut }
	due := false
	if err := b.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(idx).Cursor().First()
		due = isDue(k)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("prune %s: %w", idx, err)
	}
	if !due {
		return 0, nil
	}
	var n int
	err := b.write(ctx, func(tx *bolt.Tx) error {
		n = 0 // fn may run again when its group is retried
		exp := tx.Bucket(idx)
		var done [][]byte
		c := exp.Cursor()
		for k, v := c.First(); n < max && isDue(k); k, v = c.Next() {
			if err := drop(tx, k, v); err != nil {
				return err
			}
			done = append(done, bytes.Clone(k))
			n++
		}
		for _, k := range done {
			if err := exp.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// pruneOne deletes one order (with its account index entry, orderKey, and
// its claim to replace a certificate) or authorization (with the reuse
// index entry, if it still points to it).
func pruneOne(tx *bolt.Tx, kind byte, id, orderKey []byte) error {
	switch kind {
	case expiryOrder:
		if err := dropClaim(tx, id); err != nil {
			return err
		}
		if orderKey != nil {
			if err := tx.Bucket(bOrdersByAcct).Delete(orderKey); err != nil {
				return err
			}
		}
		// An order that does not decode keeps its entry among the
		// unfinished (counted for one period at most) rather than
		// stopping every prune at it.
		if o, err := getJSON[ACMEOrder](tx.Bucket(bOrders), id); err == nil {
			if err := tx.Bucket(bUnfinished).Delete(unfinishedKey(o.AccountID, o.CreatedAt, o.ID)); err != nil {
				return err
			}
		}
		return tx.Bucket(bOrders).Delete(id)
	case expiryAuthz:
		az, err := getJSON[ACMEAuthz](tx.Bucket(bAuthzs), id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		idx := tx.Bucket(bAuthzsByAcct)
		if ik := identKey(az.AccountID, az.Identifier, az.Wildcard); bytes.Equal(idx.Get(ik), id) {
			if err := idx.Delete(ik); err != nil {
				return err
			}
		}
		return tx.Bucket(bAuthzs).Delete(id)
	}
	return fmt.Errorf("expiry index: unknown kind %q", kind)
}

// indexACMEExpiry fills the expiry index from the orders and
// authorizations a store of schema 2 or older holds (they were written
// before the index existed), in the transaction that raises the schema.
func indexACMEExpiry(tx *bolt.Tx) error {
	exp := tx.Bucket(bACMEExpiry)
	byAcct := map[string][]byte{}
	if err := tx.Bucket(bOrdersByAcct).ForEach(func(k, _ []byte) error {
		byAcct[string(k[bytes.LastIndexByte(k, 0)+1:])] = bytes.Clone(k)
		return nil
	}); err != nil {
		return err
	}
	if err := tx.Bucket(bOrders).ForEach(func(k, v []byte) error {
		o, err := decodeJSON[ACMEOrder](k, v)
		if err != nil {
			return err
		}
		return exp.Put(expiryKey(o.Expires, string(expiryOrder)+o.ID), byAcct[o.ID])
	}); err != nil {
		return err
	}
	return tx.Bucket(bAuthzs).ForEach(func(k, v []byte) error {
		az, err := decodeJSON[ACMEAuthz](k, v)
		if err != nil {
			return err
		}
		return exp.Put(expiryKey(az.Expires, string(expiryAuthz)+az.ID), nil)
	})
}
