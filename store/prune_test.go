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
