package store

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bUnfinished indexes the orders that have not become valid by account
// and creation time, for UnfinishedOrders (a time index: see timeindex.go).
// An order enters it when it is created and leaves it when it becomes
// valid or is pruned.
var bUnfinished = []byte("acme_unfinished_orders")

// unfinishedKey is o's key in bUnfinished, a time index by account.
func unfinishedKey(account string, created time.Time, id string) []byte {
	return timeKey(account, created, id)
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
	return b.countIndex(bUnfinished, accountID, since, max, "unfinished orders of "+accountID)
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
