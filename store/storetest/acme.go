package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pkid/store"
)

// RunACME runs the ACME conformance tests; the backend must implement
// store.ACMEStore.
func RunACME(t *testing.T, open Opener) {
	t.Run("accounts", func(t *testing.T) { testAccounts(t, open) })
	t.Run("orders", func(t *testing.T) { testOrders(t, open) })
	t.Run("eab", func(t *testing.T) { testEAB(t, open) })
	t.Run("refusal after the winner", func(t *testing.T) { testRefusalAfterWinner(t, open) })
	t.Run("prune", func(t *testing.T) { testPrune(t, open) })
	t.Run("order pages", func(t *testing.T) { testOrderPages(t, open) })
	t.Run("unfinished orders", func(t *testing.T) { testUnfinishedOrders(t, open) })
	t.Run("account sources", func(t *testing.T) { testAccountSources(t, open) })
	t.Run("replacement claims", func(t *testing.T) { testReplacementClaims(t, open) })
	t.Run("reads are copies", func(t *testing.T) { testReadsAreCopies(t, open) })
}

// testReadsAreCopies: what a caller, or an update function that then
// fails, does to an object it was handed never shows in a later read (a
// backend may cache decoded objects, but never share them), and a change
// that commits shows at once.
func testReadsAreCopies(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	as := acmeOf(t, s)
	if err := as.CreateAccount(ctx, &store.ACMEAccount{ID: "acctC", Role: "default", KeyThumbprint: "thumbC", JWK: []byte(`{"k":1}`), Contact: []string{"mailto:a@internal"}, Status: store.ACMEValid, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	id := store.ACMEIdentifier{Type: "dns", Value: "c.internal"}
	az := &store.ACMEAuthz{ID: "azC", AccountID: "acctC", Role: "default", Identifier: id, Status: store.ACMEPending, Expires: t0.Add(time.Hour),
		Challenges: []store.ACMEChallenge{{Type: "http-01", Token: "tok", Status: store.ACMEPending, Error: []byte(`{"e":1}`)}}}
	o := &store.ACMEOrder{ID: "oC", AccountID: "acctC", Role: "default", Status: store.ACMEPending, Identifiers: []store.ACMEIdentifier{id}, AuthzIDs: []string{"azC"}, Error: []byte(`{"e":1}`), Expires: t0.Add(time.Hour), CreatedAt: t0}
	if err := as.CreateOrder(ctx, o, []*store.ACMEAuthz{az}); err != nil {
		t.Fatal(err)
	}
	errNo := errors.New("no")
	for range 2 { // the second round reads what the first may have cached
		a, err := as.GetAccount(ctx, "acctC")
		if err != nil || a.Contact[0] != "mailto:a@internal" || string(a.JWK) != `{"k":1}` {
			t.Fatalf("ok/account: %+v %v", a, err)
		}
		a.Contact[0], a.JWK[2], a.Status = "x", 'x', "x"
		if a, err = as.GetAccountByKey(ctx, "default", "thumbC"); err != nil || a.Contact[0] != "mailto:a@internal" {
			t.Fatalf("ok/account by key: %+v %v", a, err)
		}
		a.Contact[0] = "y"
		as.UpdateAccount(ctx, "acctC", func(a *store.ACMEAccount) error { a.Contact[0], a.JWK[2] = "z", 'z'; return errNo })

		got, err := as.GetOrder(ctx, "oC")
		if err != nil || got.AuthzIDs[0] != "azC" || got.Identifiers[0].Value != "c.internal" || string(got.Error) != `{"e":1}` {
			t.Fatalf("ok/order: %+v %v", got, err)
		}
		got.AuthzIDs[0], got.Identifiers[0].Value, got.Error[2] = "x", "x", 'x'
		as.UpdateOrder(ctx, "oC", func(o *store.ACMEOrder) error { o.AuthzIDs[0], o.Error[2] = "z", 'z'; return errNo })

		gaz, err := as.GetAuthz(ctx, "azC")
		if err != nil || gaz.Challenges[0].Token != "tok" || string(gaz.Challenges[0].Error) != `{"e":1}` {
			t.Fatalf("ok/authz: %+v %v", gaz, err)
		}
		gaz.Challenges[0].Token, gaz.Challenges[0].Error[2] = "x", 'x'
		as.UpdateAuthz(ctx, "azC", func(a *store.ACMEAuthz) error {
			a.Challenges[0].Status, a.Challenges[0].Error[2] = "z", 'z'
			return errNo
		})
	}
	if _, err := as.UpdateAuthz(ctx, "azC", func(a *store.ACMEAuthz) error { a.Status = store.ACMEValid; return nil }); err != nil {
		t.Fatal(err)
	}
	if gaz, err := as.GetAuthz(ctx, "azC"); err != nil || gaz.Status != store.ACMEValid || gaz.Challenges[0].Status != store.ACMEPending {
		t.Fatalf("ok/authz after update: %+v %v", gaz, err)
	}
}

func testEAB(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	as := acmeOf(t, s)
	k := &store.EABKey{KID: "kid1", Role: "default", Sealed: []byte{1, 2, 3}, CreatedAt: t0}
	if err := as.PutEABKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := as.PutEABKey(ctx, k); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/duplicate kid: %v", err)
	}
	if err := as.UseEABKey(ctx, "kid1", "acct", t0); err != nil {
		t.Fatalf("ok/first use: %v", err)
	}
	if err := as.UseEABKey(ctx, "kid1", "other", t0); !errors.Is(err, store.ErrStale) {
		t.Fatalf("fail/second use: %v", err)
	}
	if err := as.UseEABKey(ctx, "nope", "acct", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/unknown kid: %v", err)
	}
	// Two more, made later: listed oldest first; an unused one can be
	// withdrawn (and is then gone for good), a used one cannot.
	for i, kid := range []string{"kid3", "kid2"} {
		if err := as.PutEABKey(ctx, &store.EABKey{KID: kid, Role: "ci", Sealed: []byte{4}, CreatedAt: t0.Add(time.Duration(2-i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := as.ListEABKeys(ctx)
	if err != nil || len(list) != 3 || list[0].KID != "kid1" || list[1].KID != "kid2" || list[2].KID != "kid3" || list[0].AccountID != "acct" || list[1].Role != "ci" {
		t.Fatalf("ok/list oldest first: %v %v", list, err)
	}
	if err := as.DeleteEABKey(ctx, "kid2"); err != nil {
		t.Fatalf("ok/withdraw an unused key: %v", err)
	}
	if err := as.DeleteEABKey(ctx, "kid2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/withdraw it again: %v", err)
	}
	if err := as.UseEABKey(ctx, "kid2", "acct9", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/use a withdrawn key: %v", err)
	}
	if err := as.DeleteEABKey(ctx, "kid1"); !errors.Is(err, store.ErrStale) {
		t.Fatalf("fail/withdraw a used key: %v", err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	got, err := acmeOf(t, s).GetEABKey(ctx, "kid1")
	if err != nil || got.AccountID != "acct" || string(got.Sealed) != "\x01\x02\x03" {
		t.Fatalf("ok/after reopen: %+v %v", got, err)
	}
	if list, err := acmeOf(t, s).ListEABKeys(ctx); err != nil || len(list) != 2 || list[0].KID != "kid1" || list[1].KID != "kid3" {
		t.Fatalf("ok/list after reopen, the withdrawn key gone: %v %v", list, err)
	}
	if got, err := acmeOf(t, s).GetAccount(ctx, "acct3"); err != nil || got.KeyThumbprint != "thumb3" {
		t.Fatalf("ok/by id after reopen, failed rollover left alone: %+v %v", got, err)
	}
}

func acmeOf(t *testing.T, s store.Store) store.ACMEStore {
	t.Helper()
	a, ok := s.(store.ACMEStore)
	if !ok {
		t.Fatalf("%T does not implement store.ACMEStore", s)
	}
	return a
}

func testAccounts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	as := acmeOf(t, s)
	a := &store.ACMEAccount{ID: "acct1", Role: "default", KeyThumbprint: "thumb1", JWK: []byte(`{"kty":"EC"}`),
		Contact: []string{"mailto:ops@example.internal"}, Status: store.ACMEValid, EABKeyID: "kid1", CreatedAt: t0, Source: "10.0.0.1"}
	if err := as.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := as.GetAccount(ctx, "acct1"); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("ok/by id: every field comes back\n got %+v %v\nwant %+v", got, err, a)
	}
	if _, err := as.GetAccount(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/unknown id: %v", err)
	}
	dup := *a
	dup.ID = "acct2"
	if err := as.CreateAccount(ctx, &dup); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/same key twice: %v", err)
	}
	other := dup
	other.Role = "other"
	if err := as.CreateAccount(ctx, &other); err != nil {
		t.Fatalf("ok/same key in another role: %v", err)
	}
	if got, err := as.GetAccountByKey(ctx, "default", "thumb1"); err != nil || got.ID != "acct1" {
		t.Fatalf("ok/by key: %+v %v", got, err)
	}
	if _, err := as.GetAccountByKey(ctx, "default", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/unknown key: %v", err)
	}
	// Key rollover moves the index; a key already in use is refused.
	if _, err := as.UpdateAccount(ctx, "acct1", func(a *store.ACMEAccount) error { a.KeyThumbprint = "thumb2"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := as.GetAccountByKey(ctx, "default", "thumb1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/old key still indexed: %v", err)
	}
	if got, err := as.GetAccount(ctx, "acct1"); err != nil || got.KeyThumbprint != "thumb2" {
		t.Fatalf("ok/by id after update: %+v %v", got, err)
	}
	third := &store.ACMEAccount{ID: "acct3", Role: "default", KeyThumbprint: "thumb3", Status: store.ACMEValid, CreatedAt: t0}
	if err := as.CreateAccount(ctx, third); err != nil {
		t.Fatal(err)
	}
	if _, err := as.UpdateAccount(ctx, "acct3", func(a *store.ACMEAccount) error { a.KeyThumbprint = "thumb2"; return nil }); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/rollover to a key in use: %v", err)
	}
	// Listed oldest first, ties by ID, all roles or one.
	if err := as.CreateAccount(ctx, &store.ACMEAccount{ID: "acct9", Role: "default", KeyThumbprint: "thumb9", Status: store.ACMEValid, CreatedAt: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string]string{"": "acct9 acct1 acct2 acct3", "default": "acct9 acct1 acct3", "other": "acct2", "none": ""} {
		list, err := as.ListAccounts(ctx, role)
		var ids []string
		for _, a := range list {
			ids = append(ids, a.ID)
		}
		if err != nil || strings.Join(ids, " ") != want {
			t.Fatalf("ok/list %q: %v %v, want %s", role, ids, err, want)
		}
		if role == "default" && list[1].KeyThumbprint != "thumb2" {
			t.Fatalf("ok/list holds the accounts as they are: %+v", list[1])
		}
	}
	// An update whose function refuses changes nothing and returns the
	// function's error, which errors.Is and errors.As still find under the
	// store's wrapping (the ACME server answers with it); an account's id
	// and role never change.
	refusal := errors.New("refused inside the update")
	if _, err := as.UpdateAccount(ctx, "acct3", func(a *store.ACMEAccount) error { a.Status = store.ACMEDeactivated; return refusal }); !errors.Is(err, refusal) {
		t.Fatalf("fail/update refused: %v", err)
	}
	for name, change := range map[string]func(*store.ACMEAccount){
		"id":   func(a *store.ACMEAccount) { a.ID = "acct9" },
		"role": func(a *store.ACMEAccount) { a.Role = "other" },
	} {
		if _, err := as.UpdateAccount(ctx, "acct3", func(a *store.ACMEAccount) error { change(a); return nil }); err == nil {
			t.Fatalf("fail/update changes the account's %s", name)
		}
	}
	if got, err := as.GetAccount(ctx, "acct3"); err != nil || got.Status != store.ACMEValid || got.Role != "default" || got.KeyThumbprint != "thumb3" {
		t.Fatalf("ok/refused updates left the account alone: %+v %v", got, err)
	}
	if _, err := as.UpdateAccount(ctx, "nope", func(*store.ACMEAccount) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/update unknown account: %v", err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	if got, err := acmeOf(t, s).GetAccountByKey(ctx, "default", "thumb2"); err != nil || got.ID != "acct1" {
		t.Fatalf("ok/after reopen: %+v %v", got, err)
	}
}

func testOrders(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	as := acmeOf(t, s)
	id := store.ACMEIdentifier{Type: "dns", Value: "a.internal"}
	az := &store.ACMEAuthz{ID: "az1", AccountID: "acctO", Role: "default", Identifier: id, Status: store.ACMEPending, Expires: t0.Add(time.Hour),
		Challenges: []store.ACMEChallenge{{Type: "http-01", Token: "tok", Status: store.ACMEPending}}}
	for i, oid := range []string{"o1", "o2"} {
		o := &store.ACMEOrder{ID: oid, AccountID: "acctO", Role: "default", Status: store.ACMEPending, Identifiers: []store.ACMEIdentifier{id}, AuthzIDs: []string{"az1"}, Expires: t0.Add(time.Hour), CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		var azs []*store.ACMEAuthz
		if i == 0 {
			azs = []*store.ACMEAuthz{az}
		}
		if err := as.CreateOrder(ctx, o, azs); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _, err := as.ListOrders(ctx, "acctO", "", 0); err != nil || len(ids) != 2 || ids[0] != "o1" {
		t.Fatalf("ok/list orders: %v %v", ids, err)
	}
	// IDs are never reused: an order or authorization ID that exists is
	// refused, and nothing of the refused order is written.
	dupOrder := &store.ACMEOrder{ID: "o1", AccountID: "acctO", Role: "default", Status: store.ACMEPending, Identifiers: []store.ACMEIdentifier{id}, Expires: t0.Add(time.Hour), CreatedAt: t0}
	if err := as.CreateOrder(ctx, dupOrder, nil); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/order id reused: %v", err)
	}
	dupAuthz := *az
	fresh := &store.ACMEOrder{ID: "o3", AccountID: "acctO", Role: "default", Status: store.ACMEPending, Identifiers: []store.ACMEIdentifier{id}, AuthzIDs: []string{"az1"}, Expires: t0.Add(time.Hour), CreatedAt: t0}
	if err := as.CreateOrder(ctx, fresh, []*store.ACMEAuthz{&dupAuthz}); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/authz id reused: %v", err)
	}
	if _, err := as.GetOrder(ctx, "o3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/refused order written: %v", err)
	}
	refusal := errors.New("refused inside the update")
	if _, err := as.UpdateOrder(ctx, "o2", func(o *store.ACMEOrder) error { o.Status = store.ACMEInvalid; return refusal }); !errors.Is(err, refusal) {
		t.Fatalf("fail/order update refused: %v", err)
	}
	if _, err := as.UpdateAuthz(ctx, "az1", func(a *store.ACMEAuthz) error { a.Status = store.ACMEInvalid; return refusal }); !errors.Is(err, refusal) {
		t.Fatalf("fail/authz update refused: %v", err)
	}
	if o, err := as.GetOrder(ctx, "o2"); err != nil || o.Status != store.ACMEPending {
		t.Fatalf("ok/refused update left the order alone: %+v %v", o, err)
	}
	if _, err := as.FindValidAuthz(ctx, "acctO", id, false, t0.Add(-time.Hour), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/pending authz reused: %v", err)
	}
	if _, err := as.UpdateAuthz(ctx, "az1", func(a *store.ACMEAuthz) error {
		a.Status, a.ValidatedAt = store.ACMEValid, t0
		a.Challenges[0].Status = store.ACMEValid
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := as.FindValidAuthz(ctx, "acctO", id, false, t0.Add(-time.Hour), t0); err != nil || got.ID != "az1" {
		t.Fatalf("ok/reuse valid authz: %v", err)
	}
	if _, err := as.FindValidAuthz(ctx, "acctO", id, true, t0.Add(-time.Hour), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/wildcard differs: %v", err)
	}
	if _, err := as.FindValidAuthz(ctx, "other", id, false, t0.Add(-time.Hour), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/other account: %v", err)
	}
	if _, err := as.FindValidAuthz(ctx, "acctO", id, false, t0.Add(time.Minute), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/validated before the reuse window: %v", err)
	}
	if _, err := as.FindValidAuthz(ctx, "acctO", id, false, t0.Add(-time.Hour), t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/expired authz: %v", err)
	}
	if _, err := as.UpdateOrder(ctx, "o1", func(o *store.ACMEOrder) error {
		o.Status, o.CertSerial, o.ProcessingSince, o.PendingSerial = store.ACMEValid, "abc", t0.Add(time.Minute), "abc"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	as = acmeOf(t, s)
	if o, err := as.GetOrder(ctx, "o1"); err != nil || o.CertSerial != "abc" || o.PendingSerial != "abc" || o.Status != store.ACMEValid || !o.ProcessingSince.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ok/order after reopen: %+v %v", o, err)
	}
	if a, err := as.GetAuthz(ctx, "az1"); err != nil || a.Challenges[0].Status != store.ACMEValid {
		t.Fatalf("ok/authz after reopen: %+v %v", a, err)
	}
	if _, err := as.GetOrder(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/unknown order: %v", err)
	}
}

// testRefusalAfterWinner: when writes race for one unique thing (here an
// ACME account key), the losers' refusal (ErrDuplicate) is returned only
// once the winner's write is visible: a loser that then looks the winner
// up finds it. (A backend that batches writes must not report a refusal
// caused by a write still waiting to commit.)
func testRefusalAfterWinner(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	as := acmeOf(t, s)
	for round := range 20 {
		thumb := fmt.Sprintf("race-%d", round)
		const n = 16
		var wg sync.WaitGroup
		var created atomic.Int32
		errs := make(chan error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a := &store.ACMEAccount{ID: fmt.Sprintf("r%d-%d", round, i), Role: "default", KeyThumbprint: thumb, Status: store.ACMEValid, CreatedAt: t0}
				err := as.CreateAccount(ctx, a)
				switch {
				case err == nil:
					created.Add(1)
				case errors.Is(err, store.ErrDuplicate):
					if _, gerr := as.GetAccountByKey(ctx, "default", thumb); gerr != nil {
						errs <- fmt.Errorf("refused as a duplicate, but the account that won is not there: %w", gerr)
					}
				default:
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		if created.Load() != 1 {
			t.Fatalf("round %d: %d accounts created for one key", round, created.Load())
		}
	}
}

// testPrune: PruneACME deletes what expired before the cut-off, oldest
// first and at most max at a time, with every index entry that pointed to
// it, and nothing else: not an order or authorization that expires later,
// nor the reuse entry of a newer authorization for the same identifier.
func testPrune(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	as := acmeOf(t, s)
	id := store.ACMEIdentifier{Type: "dns", Value: "p.internal"}
	authz := func(aid string, expires time.Time) *store.ACMEAuthz {
		return &store.ACMEAuthz{ID: aid, AccountID: "acctP", Role: "default", Identifier: id, Status: store.ACMEValid, ValidatedAt: t0, Expires: expires,
			Challenges: []store.ACMEChallenge{{Type: "http-01", Token: "tok", Status: store.ACMEValid}}}
	}
	order := func(oid string, expires time.Time, azs ...*store.ACMEAuthz) {
		t.Helper()
		o := &store.ACMEOrder{ID: oid, AccountID: "acctP", Role: "default", Status: store.ACMEPending, Identifiers: []store.ACMEIdentifier{id}, Expires: expires, CreatedAt: t0}
		for _, az := range azs {
			o.AuthzIDs = append(o.AuthzIDs, az.ID)
		}
		if err := as.CreateOrder(ctx, o, azs); err != nil {
			t.Fatal(err)
		}
	}
	// Five old orders, each with its authorization, expiring a minute
	// apart; then a newer authorization for the same identifier, and an
	// order that reuses the oldest authorization but expires later.
	// (The database is shared with the other ACME tests, whose objects
	// expire around t0: these expire well before and well after.)
	p0 := t0.Add(-100 * time.Hour)
	for i := range 5 {
		at := p0.Add(time.Duration(i) * time.Minute)
		order(fmt.Sprintf("old%d", i), at, authz(fmt.Sprintf("azold%d", i), at))
	}
	order("new", t0.Add(480*time.Hour), authz("aznew", t0.Add(480*time.Hour)))
	order("reuser", t0.Add(240*time.Hour))
	cut := p0.Add(time.Hour)
	if n, err := as.PruneACME(ctx, p0, 100); err != nil || n != 0 {
		t.Fatalf("ok/nothing expired before the first expiry: %d %v", n, err)
	}
	if n, err := as.PruneACME(ctx, time.Time{}, 100); err != nil || n != 0 {
		t.Fatalf("ok/nothing expired before year 1: %d %v", n, err)
	}
	total := 0
	for _, want := range []int{4, 4, 2, 0} {
		n, err := as.PruneACME(ctx, cut, 4)
		if err != nil || n != want {
			t.Fatalf("ok/prune at most 4: deleted %d, want %d (%v)", n, want, err)
		}
		total += n
	}
	if total != 10 {
		t.Fatalf("pruned %d objects, want 10", total)
	}
	for i := range 5 {
		if _, err := as.GetOrder(ctx, fmt.Sprintf("old%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("fail/expired order old%d kept: %v", i, err)
		}
		if _, err := as.GetAuthz(ctx, fmt.Sprintf("azold%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("fail/expired authz azold%d kept: %v", i, err)
		}
	}
	if ids, _, err := as.ListOrders(ctx, "acctP", "", 0); err != nil || !reflect.DeepEqual(ids, []string{"new", "reuser"}) {
		t.Fatalf("ok/list after prune: %v %v", ids, err)
	}
	if got, err := as.FindValidAuthz(ctx, "acctP", id, false, t0.Add(-time.Hour), t0); err != nil || got.ID != "aznew" {
		t.Fatalf("ok/the newer authz is still reused: %+v %v", got, err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	as = acmeOf(t, s)
	if n, err := as.PruneACME(ctx, t0.Add(1000*time.Hour), 100); err != nil || n < 3 {
		t.Fatalf("ok/after reopen, the rest expires: %d %v", n, err)
	}
	if _, err := as.GetOrder(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/order kept after reopen: %v", err)
	}
	if _, err := as.FindValidAuthz(ctx, "acctP", id, false, t0.Add(-time.Hour), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/pruned authz still indexed for reuse: %v", err)
	}
	if ids, _, err := as.ListOrders(ctx, "acctP", "", 0); err != nil || len(ids) != 0 {
		t.Fatalf("ok/empty list: %v %v", ids, err)
	}
}

// testOrderPages: an account's orders list comes in pages of at most the
// limit, oldest first, each cursor continuing where the last page ended,
// and the last page without one; another account whose ID extends this
// one's shares none of it; a cursor the store did not give is refused.
func testOrderPages(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	as := acmeOf(t, s)
	var want []string
	for i := range 7 {
		for _, acct := range []string{"acctL", "acctL2"} {
			o := &store.ACMEOrder{ID: fmt.Sprintf("%s-o%d", acct, i), AccountID: acct, Role: "default", Status: store.ACMEPending,
				Identifiers: []store.ACMEIdentifier{{Type: "dns", Value: "l.internal"}}, Expires: t0.Add(time.Hour), CreatedAt: t0}
			if err := as.CreateOrder(ctx, o, nil); err != nil {
				t.Fatal(err)
			}
			if acct == "acctL" {
				want = append(want, o.ID)
			}
		}
	}
	for _, limit := range []int{3, 7, 100} {
		var got []string
		cursor, pages := "", 0
		for {
			ids, next, err := as.ListOrders(ctx, "acctL", cursor, limit)
			if err != nil {
				t.Fatalf("limit %d, cursor %q: %v", limit, cursor, err)
			}
			if len(ids) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(ids))
			}
			got, pages = append(got, ids...), pages+1
			if cursor = next; cursor == "" {
				break
			}
		}
		if !reflect.DeepEqual(got, want) || pages != (len(want)+limit-1)/limit {
			t.Fatalf("ok/limit %d: %d pages of %v, want %v", limit, pages, got, want)
		}
	}
	if _, _, err := as.ListOrders(ctx, "acctL", "not-a-cursor", 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/cursor not given by the store: %v", err)
	}
}

// testReplacementClaims: one order at a time holds the claim to replace a
// certificate; it passes only from the holder the caller names, so of
// orders racing for it exactly one wins; it survives a reopen; pruning an
// order drops its claim, but never a claim another order has taken since.
func testReplacementClaims(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	as := acmeOf(t, s)
	if _, err := as.ReplacementOrder(ctx, "c1a1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/unclaimed certificate: %v", err)
	}
	if err := as.ClaimReplacement(ctx, "c1a1", "", "r1"); err != nil {
		t.Fatalf("ok/first claim: %v", err)
	}
	for _, tc := range []struct{ name, prev string }{{"unclaimed", ""}, {"another holder", "r9"}} {
		if err := as.ClaimReplacement(ctx, "c1a1", tc.prev, "r2"); !errors.Is(err, store.ErrStale) {
			t.Fatalf("fail/claim taken from %s: %v", tc.name, err)
		}
	}
	if id, err := as.ReplacementOrder(ctx, "c1a1"); err != nil || id != "r1" {
		t.Fatalf("ok/the first claim holds: %q %v", id, err)
	}
	if err := as.ClaimReplacement(ctx, "c1a1", "r1", "r2"); err != nil {
		t.Fatalf("ok/claim passed on from a finished order: %v", err)
	}
	const racers = 8
	won := make(chan string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			id := fmt.Sprintf("race%d", i)
			if err := as.ClaimReplacement(ctx, "c2b2", "", id); err == nil {
				won <- id
			} else if !errors.Is(err, store.ErrStale) {
				t.Errorf("racer %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	close(won)
	var winners []string
	for id := range won {
		winners = append(winners, id)
	}
	if id, err := as.ReplacementOrder(ctx, "c2b2"); len(winners) != 1 || err != nil || id != winners[0] {
		t.Fatalf("fail/racing claims: winners %v, holder %q %v", winners, id, err)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	as = acmeOf(t, s)
	if id, err := as.ReplacementOrder(ctx, "c1a1"); err != nil || id != "r2" {
		t.Fatalf("ok/claim after reopen: %q %v", id, err)
	}
	// Orders that expired long before every other test's: pruning "gone"
	// drops its claim; pruning "passed" leaves the claim it passed on.
	at := t0.Add(-200 * time.Hour)
	for _, o := range []struct{ id, serial string }{{"gone", "c3c3"}, {"passed", "c4d4"}} {
		if err := as.ClaimReplacement(ctx, o.serial, "", o.id); err != nil {
			t.Fatal(err)
		}
		err := as.CreateOrder(ctx, &store.ACMEOrder{ID: o.id, AccountID: "acctR", Role: "default", Status: store.ACMEPending, Expires: at, CreatedAt: at.Add(-time.Hour),
			Identifiers: []store.ACMEIdentifier{{Type: "dns", Value: "r.internal"}}, Replaces: "aki." + o.serial, ReplacesSerial: o.serial}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := as.ClaimReplacement(ctx, "c4d4", "passed", "later"); err != nil {
		t.Fatal(err)
	}
	if n, err := as.PruneACME(ctx, at.Add(time.Minute), 100); err != nil || n != 2 {
		t.Fatalf("ok/prune both orders: %d %v", n, err)
	}
	if _, err := as.ReplacementOrder(ctx, "c3c3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/a pruned order's claim kept: %v", err)
	}
	if id, err := as.ReplacementOrder(ctx, "c4d4"); err != nil || id != "later" {
		t.Fatalf("fail/pruning an order dropped the claim it had passed on: %q %v", id, err)
	}
}
