package store

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bAccountSources indexes ACME accounts by the client address that
// registered them and their creation time, for AccountsFrom (a time
// index: see timeindex.go). Accounts are never deleted, so neither are
// its keys; accounts made before pkid kept a source are not in it.
var bAccountSources = []byte("acme_account_sources")

// AccountsFrom implements ACMEStore.
func (b *Bolt) AccountsFrom(ctx context.Context, source string, since time.Time, max int) (int, time.Time, error) {
	var n int
	var oldest time.Time
	err := b.db.View(func(tx *bolt.Tx) error {
		n, oldest = countSince(tx.Bucket(bAccountSources), source, since, max)
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count accounts registered from %s: %w", source, err)
	}
	return n, oldest, nil
}
