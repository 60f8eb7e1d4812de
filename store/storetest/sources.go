package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"pkid/store"
)

// testAccountSources: AccountsFrom counts the accounts one client address
// registered since a time, in every role, up to a bound, and names the
// first; an address that extends another's is not counted with it;
// accounts without a source are not counted; an account's source and
// creation time cannot be changed.
func testAccountSources(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	as := acmeOf(t, s)
	n := 0
	create := func(source, role string, created time.Time) string {
		t.Helper()
		n++
		id := fmt.Sprintf("src%d", n)
		a := &store.ACMEAccount{ID: id, Role: role, KeyThumbprint: id, JWK: []byte(`{}`), Status: store.ACMEValid, CreatedAt: created, Source: source}
		if err := as.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		return id
	}
	count := func(what, source string, since time.Time, max, want int, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := as.AccountsFrom(ctx, source, since, max)
		if err != nil || n != want || (n > 0 && !oldest.Equal(wantOldest)) {
			t.Fatalf("%s: %d accounts, the first made %s (%v); want %d, %s", what, n, oldest, err, want, wantOldest)
		}
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i)*time.Minute + time.Millisecond) }
	for i := range 4 {
		create("10.0.0.5", "default", at(i))
	}
	first := create("10.0.0.5", "other", at(4)) // another role, the same client
	create("10.0.0.50", "default", at(0))       // an address that extends 10.0.0.5
	create("2001:db8:1:2::/64", "default", at(1))
	create("", "default", at(2)) // made before sources were kept

	count("ok/every account from the address", "10.0.0.5", t0.Add(-time.Hour), 100, 5, at(0))
	count("ok/since the second", "10.0.0.5", at(1), 100, 4, at(1))
	count("ok/since a nanosecond after the second", "10.0.0.5", at(1).Add(time.Nanosecond), 100, 3, at(2))
	count("ok/at most 2", "10.0.0.5", t0.Add(-time.Hour), 2, 2, at(0))
	count("ok/the longer address alone", "10.0.0.50", t0.Add(-time.Hour), 100, 1, at(0))
	count("ok/an IPv6 prefix", "2001:db8:1:2::/64", t0.Add(-time.Hour), 100, 1, at(1))
	count("ok/an address with none", "10.0.0.6", t0.Add(-time.Hour), 100, 0, time.Time{})
	count("ok/none since", "10.0.0.5", at(5), 100, 0, time.Time{})
	count("ok/no source is no address", "", t0.Add(-time.Hour), 100, 0, time.Time{})

	if got, err := as.GetAccount(ctx, first); err != nil || got.Source != "10.0.0.5" {
		t.Fatalf("ok/the source comes back: %+v %v", got, err)
	}
	if _, err := as.UpdateAccount(ctx, first, func(a *store.ACMEAccount) error { a.Source = "10.0.0.6"; return nil }); err == nil {
		t.Fatal("fail/an account's source changed")
	}
	if _, err := as.UpdateAccount(ctx, first, func(a *store.ACMEAccount) error { a.CreatedAt = t0.Add(-time.Hour); return nil }); err == nil {
		t.Fatal("fail/an account's creation time changed")
	}
	if _, err := as.UpdateAccount(ctx, first, func(a *store.ACMEAccount) error { a.Status = store.ACMEDeactivated; return nil }); err != nil {
		t.Fatalf("ok/a status change: %v", err)
	}
	count("ok/after updates, a deactivated account still counts", "10.0.0.5", t0.Add(-time.Hour), 100, 5, at(0))
	count("ok/after updates, no change elsewhere", "10.0.0.6", t0.Add(-time.Hour), 100, 0, time.Time{})
}
