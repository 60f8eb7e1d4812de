package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bUnfinished indexes the orders that have not become valid by account
// and creation time, for UnfinishedOrders: account \x00 created (8 bytes,
// big-endian Unix nanoseconds) id -> nil. An order enters it when it is
// created and leaves it when it becomes valid or is pruned.
var bUnfinished = []byte("acme_unfinished_orders")

// unfinishedKey is o's key in bUnfinished. Creation times before 1970
// (none pkid makes) sort first.
func unfinishedKey(account string, created time.Time, id string) []byte {
	k := make([]byte, 0, len(account)+9+len(id))
	k = append(append(k, account...), 0)
	return append(binary.BigEndian.AppendUint64(k, unixNanos(created)), id...)
}

func unixNanos(t time.Time) uint64 {
	if t.Unix() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// noteUnfinished keeps o's entry in bUnfinished in step with its status
// as it is written: was is its status before ("" for a new order).
func noteUnfinished(tx *bolt.Tx, o *ACMEOrder, was string) error {
	k := unfinishedKey(o.AccountID, o.CreatedAt, o.ID)
	switch {
	case was != ACMEValid && o.Status == ACMEValid:
		return tx.Bucket(bUnfinished).Delete(k)
	case was == "" && o.Status != ACMEValid:
		return tx.Bucket(bUnfinished).Put(k, nil)
	}
	return nil
}

// UnfinishedOrders implements ACMEStore: a seek and a walk over at most
// max index keys, however many orders the account has.
func (b *Bolt) UnfinishedOrders(ctx context.Context, accountID string, since time.Time, max int) (int, time.Time, error) {
	prefix := append([]byte(accountID), 0)
	start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), unixNanos(since))
	var n int
	var oldest time.Time
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bUnfinished).Cursor()
		for k, _ := c.Seek(start); k != nil && n < max && bytes.HasPrefix(k, prefix) && len(k) >= len(prefix)+8; k, _ = c.Next() {
			if n == 0 {
				oldest = time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))).UTC()
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count unfinished orders of %s: %w", accountID, err)
	}
	return n, oldest, nil
}

// indexUnfinished fills bUnfinished from the orders a store of schema 6
// or older holds, in the transaction that raises the schema. An order
// that does not decode is left out, not allowed to stop the store from
// opening: the index only bounds new orders.
func indexUnfinished(tx *bolt.Tx) error {
	return tx.Bucket(bOrders).ForEach(func(k, v []byte) error {
		o, err := decodeJSON[ACMEOrder](k, v)
		if err != nil {
			return nil
		}
		return noteUnfinished(tx, o, "")
	})
}
