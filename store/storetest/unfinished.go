package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"pkid/store"
)

// testUnfinishedOrders: UnfinishedOrders counts an account's orders
// created since a time that have not become valid, whatever else they
// are (pending, ready, processing, invalid), up to max, and says when the
// first counted was created. An order leaves the count when it becomes
// valid or is pruned; other accounts' orders never count; an update that
// fails changes nothing; and the creation time an order is counted by
// cannot be changed.
func testUnfinishedOrders(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	as := acmeOf(t, s)
	id := store.ACMEIdentifier{Type: "dns", Value: "u.internal"}
	create := func(acct, oid string, created time.Time, status string) {
		t.Helper()
		o := &store.ACMEOrder{ID: oid, AccountID: acct, Role: "default", Status: status, Identifiers: []store.ACMEIdentifier{id},
			Expires: created.Add(time.Hour), CreatedAt: created}
		if err := as.CreateOrder(ctx, o, nil); err != nil {
			t.Fatal(err)
		}
	}
	setStatus := func(oid, status string) {
		t.Helper()
		if _, err := as.UpdateOrder(ctx, oid, func(o *store.ACMEOrder) error { o.Status = status; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	count := func(what, acct string, since time.Time, max, want int, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := as.UnfinishedOrders(ctx, acct, since, max)
		if err != nil || n != want || (n > 0 && !oldest.Equal(wantOldest)) {
			t.Fatalf("%s: %d orders, the first made %s (%v); want %d, %s", what, n, oldest, err, want, wantOldest)
		}
	}
	// Five orders a minute apart, each a millisecond after the minute.
	at := func(i int) time.Time { return t0.Add(time.Duration(i)*time.Minute + time.Millisecond) }
	for i := range 5 {
		create("acctU", fmt.Sprintf("u%d", i), at(i), store.ACMEPending)
	}
	create("acctV", "v0", at(0), store.ACMEPending)
	create("acctU", "ready", at(5), store.ACMEReady)
	create("acctU", "born valid", at(6), store.ACMEValid)
	create("acctU2", "other", at(0), store.ACMEPending) // an account whose ID extends acctU's

	count("ok/every unfinished order", "acctU", t0.Add(-time.Hour), 100, 6, at(0))
	count("ok/since the second", "acctU", at(1), 100, 5, at(1))
	count("ok/since a nanosecond after the second", "acctU", at(1).Add(time.Nanosecond), 100, 4, at(2))
	count("ok/at most 3", "acctU", t0.Add(-time.Hour), 3, 3, at(0))
	count("ok/another account", "acctV", t0.Add(-time.Hour), 100, 1, at(0))
	count("ok/an account with none", "acctW", t0.Add(-time.Hour), 100, 0, time.Time{})
	count("ok/none since", "acctU", at(7), 100, 0, time.Time{})

	setStatus("u0", store.ACMEProcessing)
	setStatus("u1", store.ACMEInvalid)
	count("ok/processing and invalid still count", "acctU", t0.Add(-time.Hour), 100, 6, at(0))
	setStatus("u0", store.ACMEValid)
	setStatus("ready", store.ACMEValid)
	count("ok/valid ones leave the count", "acctU", t0.Add(-time.Hour), 100, 4, at(1))
	setStatus("u0", store.ACMEValid) // valid again: no change
	count("ok/an update of a valid order", "acctU", t0.Add(-time.Hour), 100, 4, at(1))

	boom := fmt.Errorf("boom")
	if _, err := as.UpdateOrder(ctx, "u1", func(o *store.ACMEOrder) error { o.Status = store.ACMEValid; return boom }); err == nil {
		t.Fatal("fail/an update that fails succeeded")
	}
	count("ok/a failed update changes nothing", "acctU", t0.Add(-time.Hour), 100, 4, at(1))
	if _, err := as.UpdateOrder(ctx, "u2", func(o *store.ACMEOrder) error { o.CreatedAt = t0.Add(-time.Hour); return nil }); err == nil {
		t.Fatal("fail/an order's creation time changed")
	}
	if _, err := as.UpdateOrder(ctx, "u2", func(o *store.ACMEOrder) error { o.AccountID = "acctV"; return nil }); err == nil {
		t.Fatal("fail/an order moved to another account")
	}
	count("ok/after refused changes", "acctU", t0.Add(-time.Hour), 100, 4, at(1))

	// Every order here expires within 1h7m of t0: pruning them empties the count.
	for {
		n, err := as.PruneACME(ctx, t0.Add(2*time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	count("ok/pruned orders leave the count", "acctU", t0.Add(-time.Hour), 100, 0, time.Time{})
	count("ok/pruned, another account", "acctV", t0.Add(-time.Hour), 100, 0, time.Time{})
}
