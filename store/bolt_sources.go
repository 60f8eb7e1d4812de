package store

import (
	"context"
	"time"
)

// bAccountSources indexes ACME accounts by the client address that
// registered them and their creation time, for AccountsFrom (a time
// index: see timeindex.go). Accounts are never deleted, so neither are
// its keys; accounts made before pkid kept a source are not in it.
var bAccountSources = []byte("acme_account_sources")

// AccountsFrom implements ACMEStore.
func (b *Bolt) AccountsFrom(ctx context.Context, source string, since time.Time, max int) (int, time.Time, error) {
	return b.countIndex(bAccountSources, source, since, max, "accounts registered from "+source)
}
