package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSchema3IndexesOldACMEObjects: orders and authorizations written by
// a schema-2 pkid (no expiry index) are indexed when the store is opened
// and raised to schema 3, so PruneACME deletes them like new ones, order
// index entries included.
func TestSchema3IndexesOldACMEObjects(t *testing.T) {
	ctx := context.Background()
	b, path := openTemp(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := ACMEIdentifier{Type: "dns", Value: "old.internal"}
	az := &ACMEAuthz{ID: "az", AccountID: "acct", Role: "default", Identifier: id, Status: ACMEPending, Expires: at}
	if err := b.CreateOrder(ctx, &ACMEOrder{ID: "o", AccountID: "acct", Role: "default", Status: ACMEPending, Identifiers: []ACMEIdentifier{id}, AuthzIDs: []string{"az"}, Expires: at}, []*ACMEAuthz{az}); err != nil {
		t.Fatal(err)
	}
	// As schema 2 wrote it (no expiry index), then upgraded.
	b = reopenAs(t, b, path, bACMEExpiry, "2")
	if n, err := b.PruneACME(ctx, at.Add(time.Second), 100); err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want the order and its authorization", n, err)
	}
	if _, err := b.GetOrder(ctx, "o"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("order kept: %v", err)
	}
	if ids, _, err := b.ListOrders(ctx, "acct", "", 0); err != nil || len(ids) != 0 {
		t.Fatalf("order index kept: %v %v", ids, err)
	}
}

// TestSchema5IndexesOldTokens: tokens written by a schema-4 pkid (no
// expiry index) are indexed when the store is opened and raised to
// schema 5, so PruneTokens deletes them like new ones.
func TestSchema5IndexesOldTokens(t *testing.T) {
	ctx := context.Background()
	b, path := openTemp(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"old1", "old2", "live"} {
		if err := b.PutToken(ctx, &Token{ID: id, Roles: []string{"default"}, ExpiresAt: at.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// As schema 4 wrote it (no expiry index), then upgraded.
	b = reopenAs(t, b, path, bTokenExpiry, "4")
	if n, err := b.PruneTokens(ctx, at.Add(90*time.Minute), 100); err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want old1 and old2", n, err)
	}
	if _, err := b.GetToken(ctx, "old2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old2 kept: %v", err)
	}
	if _, err := b.GetToken(ctx, "live"); err != nil {
		t.Fatalf("live token pruned: %v", err)
	}
}

// TestSchema7IndexesUnfinishedOrders: orders written by a schema-6 pkid
// (no index of unfinished orders) are indexed when the store is opened
// and raised to schema 7, so UnfinishedOrders counts those not valid,
// and a pruned one leaves the count.
func TestSchema7IndexesUnfinishedOrders(t *testing.T) {
	ctx := context.Background()
	b, path := openTemp(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, st := range []string{ACMEPending, ACMEValid, ACMEInvalid} {
		o := &ACMEOrder{ID: st, AccountID: "acct", Role: "default", Status: st, Expires: at.Add(time.Duration(i+1) * time.Hour), CreatedAt: at.Add(time.Duration(i) * time.Minute)}
		if err := b.CreateOrder(ctx, o, nil); err != nil {
			t.Fatal(err)
		}
	}
	// As schema 6 wrote it (no index of unfinished orders), then upgraded.
	b = reopenAs(t, b, path, bUnfinished, "6")
	if n, oldest, err := b.UnfinishedOrders(ctx, "acct", at, 10); err != nil || n != 2 || !oldest.Equal(at) {
		t.Fatalf("counted %d from %s (%v), want the pending and the invalid one, from %s", n, oldest, err, at)
	}
	if n, err := b.PruneACME(ctx, at.Add(90*time.Minute), 100); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want the pending order", n, err)
	}
	if n, oldest, err := b.UnfinishedOrders(ctx, "acct", at, 10); err != nil || n != 1 || !oldest.Equal(at.Add(2*time.Minute)) {
		t.Fatalf("after the prune: %d from %s (%v), want the invalid one", n, oldest, err)
	}
}
