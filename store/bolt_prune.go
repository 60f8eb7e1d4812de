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
// oldest end, so its cost is the objects it deletes, not the store's size;
// it runs through the commit loop like every write, in one transaction of
// at most max objects, so issuance never waits long behind it.
func (b *Bolt) PruneACME(ctx context.Context, before time.Time, max int) (int, error) {
	cut := uint64(before.Unix())
	// A read first: callers run this every tick, and nothing due costs
	// no commit.
	due := false
	b.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bACMEExpiry).Cursor().First()
		due = len(k) > 9 && binary.BigEndian.Uint64(k[:8]) < cut
		return nil
	})
	if !due {
		return 0, nil
	}
	var n int
	err := b.write(ctx, func(tx *bolt.Tx) error {
		n = 0 // fn may run again when its group is retried
		exp := tx.Bucket(bACMEExpiry)
		var done [][]byte
		c := exp.Cursor()
		for k, v := c.First(); n < max && len(k) > 9 && binary.BigEndian.Uint64(k[:8]) < cut; k, v = c.Next() {
			if err := pruneOne(tx, k[8], k[9:], v); err != nil {
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
	if err != nil {
		return 0, fmt.Errorf("prune ACME objects expired before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// pruneOne deletes one order (with its account index entry, orderKey) or
// authorization (with the reuse index entry, if it still points to it).
func pruneOne(tx *bolt.Tx, kind byte, id, orderKey []byte) error {
	switch kind {
	case expiryOrder:
		if orderKey != nil {
			if err := tx.Bucket(bOrdersByAcct).Delete(orderKey); err != nil {
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
	if err := tx.Bucket(bOrders).ForEach(func(k, _ []byte) error {
		o, err := getJSON[ACMEOrder](tx.Bucket(bOrders), k)
		if err != nil {
			return err
		}
		return exp.Put(expiryKey(o.Expires, expiryOrder, o.ID), byAcct[o.ID])
	}); err != nil {
		return err
	}
	return tx.Bucket(bAuthzs).ForEach(func(k, _ []byte) error {
		az, err := getJSON[ACMEAuthz](tx.Bucket(bAuthzs), k)
		if err != nil {
			return err
		}
		return exp.Put(expiryKey(az.Expires, expiryAuthz, az.ID), nil)
	})
}
