package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"pkid/internal/testutil"
	"pkid/store"
)

// TestRateLimitedAccount: the "limited" role allows one certificate an
// hour to an account. newOrder refuses an account that has had it, before
// any validation (429 rateLimited, Retry-After in seconds); an account that
// ordered twice while it still had one is refused at the second finalize,
// and that order stays ready, to be finalized once the hour has passed.
// Another account has its own allowance.
func TestRateLimitedAccount(t *testing.T) {
	const name = "x.limited.internal"
	want := func(t *testing.T, a answer, retry string) {
		t.Helper()
		typ, d := a.problem(t)
		if a.status != 429 || typ != "rateLimited" || a.header.Get("Retry-After") != retry ||
			!strings.Contains(d, `role "limited" allows 1 certificates per 1h0m0s to one credential, and acme:`) {
			t.Fatalf("got %d %s (Retry-After %q), want 429 rateLimited, Retry-After %s", a.status, a.body, a.header.Get("Retry-After"), retry)
		}
	}

	first := newRaw(t, "limited")
	first.register()
	stop := first.serveKeyAuth()
	loc, o := first.readyOrder(name)
	stop()
	if o = first.finalize(loc, o, name); o.Status != "valid" {
		t.Fatalf("ok/the hour's certificate: %+v", o)
	}
	want(t, first.post(first.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": name}}}), "3600")

	second := newRaw(t, "limited")
	second.register()
	defer second.serveKeyAuth()()
	loc1, o1 := second.readyOrder(name)
	loc2, o2 := second.readyOrder(name)
	if o1 = second.finalize(loc1, o1, name); o1.Status != "valid" {
		t.Fatalf("ok/another account's certificate: %+v", o1)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := map[string]any{"csr": csrFor(t, key, name)}
	want(t, second.post(o2.Finalize, csr), "3600")
	var cur orderObj
	if second.post(loc2, nil).json(t, &cur); cur.Status != "ready" {
		t.Fatalf("order %s after a rate-limited finalize, want ready", cur.Status)
	}
	srv.clock.Advance(time.Hour)
	if a := second.post(o2.Finalize, csr); a.status != 200 {
		t.Fatalf("ok/finalize an hour later: %d %s", a.status, a.body)
	}
}

// TestFailedValidationsLimited: an account that has failed to validate a
// name acme.failed_validations times (by default 10 an hour) is refused
// new orders for it, before any authorization is stored (429 rateLimited,
// Retry-After in seconds, a detail naming the name, the count and the
// setting); its other names, and other accounts, are not; a new order is
// allowed once a failure has aged out.
func TestFailedValidationsLimited(t *testing.T) {
	const name = "down.internal" // nobody answers http-01 for it
	c := newRaw(t, "default")
	c.register()
	orderFor := func(c *rawClient, name string) answer {
		return c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": name}}})
	}
	for i := range 10 {
		_, o := c.newOrder(name)
		var az authzObj
		c.post(o.Authorizations[0], nil).json(t, &az)
		for _, ch := range az.Challenges {
			if ch.Type == "http-01" {
				c.post(ch.URL, map[string]any{})
			}
		}
		if got := c.waitAuthz(o.Authorizations[0]); got.Status != "invalid" {
			t.Fatalf("validation %d of %s: %s, want invalid", i+1, name, got.Status)
		}
	}
	a := orderFor(c, name)
	typ, d := a.problem(t)
	if a.status != 429 || typ != "rateLimited" || a.header.Get("Retry-After") != "360" ||
		!strings.Contains(d, "this account failed to validate dns down.internal 10 times in 1h0m0s (acme.failed_validations)") {
		t.Fatalf("fail/the eleventh order: %d %s (Retry-After %q)", a.status, a.body, a.header.Get("Retry-After"))
	}
	if a := orderFor(c, "a.internal"); a.status != 201 {
		t.Fatalf("ok/another name of the account: %d %s", a.status, a.body)
	}
	other := newRaw(t, "default")
	other.register()
	if a := orderFor(other, name); a.status != 201 {
		t.Fatalf("ok/another account: %d %s", a.status, a.body)
	}
	srv.clock.Advance(6 * time.Minute)
	if a := orderFor(c, name); a.status != 201 {
		t.Fatalf("ok/six minutes on, one failure has aged out: %d %s", a.status, a.body)
	}
}

// TestUnfinishedOrdersLimited: an account that has made
// acme.unfinished_orders orders (by default 300 an hour) that did not end
// in a certificate is refused a new one before anything is stored (429
// rateLimited, Retry-After until the oldest is an hour old, a detail
// naming the count and the setting). An order that ends in a certificate
// gives its place back; another account is not refused; at the hour given
// by Retry-After the account orders again.
func TestUnfinishedOrdersLimited(t *testing.T) {
	const name = "a.internal"
	c := newRaw(t, "default")
	c.register()
	orderFor := func(c *rawClient) answer {
		return c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": name}}})
	}
	refused := func(what, retry string) {
		t.Helper()
		a := orderFor(c)
		typ, d := a.problem(t)
		if a.status != 429 || typ != "rateLimited" || a.header.Get("Retry-After") != retry ||
			!strings.Contains(d, "this account has 300 orders from the last 1h0m0s that did not end in a certificate (acme.unfinished_orders)") {
			t.Fatalf("%s: %d %s (Retry-After %q), want 429 rateLimited, Retry-After %s", what, a.status, a.body, a.header.Get("Retry-After"), retry)
		}
	}
	stored := func() int {
		t.Helper()
		ids, _, err := srv.run.Store.(store.ACMEStore).ListOrders(context.Background(), c.kid[strings.LastIndex(c.kid, "/")+1:], "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	for range 299 {
		c.newOrder(name)
	}
	stop := c.serveKeyAuth()
	loc, o := c.readyOrder(name)
	stop()
	refused("fail/the 301st order", "3600")
	if n := stored(); n != 300 {
		t.Fatalf("fail/a refused order was stored: the account has %d orders, want 300", n)
	}
	other := newRaw(t, "default")
	other.register()
	if a := orderFor(other); a.status != 201 {
		t.Fatalf("ok/another account: %d %s", a.status, a.body)
	}
	if o = c.finalize(loc, o, name); o.Status != "valid" {
		t.Fatalf("finalize: %+v", o)
	}
	if a := orderFor(c); a.status != 201 {
		t.Fatalf("ok/a certificate gives its order's place back: %d %s", a.status, a.body)
	}
	srv.clock.Advance(20 * time.Minute)
	refused("fail/20 minutes on", "2400")
	srv.clock.Advance(40 * time.Minute)
	if a := orderFor(c); a.status != 201 {
		t.Fatalf("ok/at Retry-After: %d %s", a.status, a.body)
	}
}

// TestNewAccountsLimited: acme.new_accounts at its default, {accounts:
// 100, per: 1h}. A client address that has registered 100 accounts in the
// hour, in any roles, is refused the 101st (429 rateLimited, Retry-After
// until the oldest ages out) and nothing is stored; a key that has an
// account still finds it; another address is not refused, nor is a
// registration with an external account binding (which counts); as the
// first accounts age out, the address registers again.
func TestNewAccountsLimited(t *testing.T) {
	from, other := net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)
	accounts := func() int {
		t.Helper()
		all, err := srv.run.Store.(store.ACMEStore).ListAccounts(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	// newAccount posts to newAccount with c's JWK, whether or not c has
	// an account.
	newAccount := func(c *rawClient, body map[string]any) answer {
		jwk := *c
		jwk.kid = ""
		return jwk.post(c.url("newAccount"), body)
	}
	tos := map[string]any{"termsOfServiceAgreed": true}
	var first *rawClient
	for i := range 100 {
		c := newRawFrom(t, []string{"strict", "default"}[i%2], from)
		c.register()
		if i == 0 {
			first = c
			srv.clock.Advance(20 * time.Minute) // the first ages out 20 minutes before the rest
		}
	}
	const series = `pkid_rate_limited_total{limit="acme.new_accounts"}`
	counted := testutil.Metric(t, srv.client, srv.base, series)
	refused := func(what, retry string) {
		t.Helper()
		before := accounts()
		a := newAccount(newRawFrom(t, "strict", from), tos)
		typ, d := a.problem(t)
		if a.status != 429 || typ != "rateLimited" || a.header.Get("Retry-After") != retry ||
			!strings.Contains(d, "127.0.0.2 has registered 100 ACME accounts in the last 1h0m0s (acme.new_accounts)") {
			t.Fatalf("%s: %d %s (Retry-After %q), want 429 rateLimited, Retry-After %s", what, a.status, a.body, a.header.Get("Retry-After"), retry)
		}
		if n := accounts(); n != before {
			t.Fatalf("%s: a refused registration was stored (%d accounts, were %d)", what, n, before)
		}
		if counted++; testutil.Metric(t, srv.client, srv.base, series) != counted {
			t.Fatalf("%s: /metrics %s is not %v", what, series, counted)
		}
	}
	refused("fail/the 101st account", "2400")
	if a := newAccount(first, tos); a.status != 200 || a.header.Get("Location") != first.kid {
		t.Fatalf("ok/a key with an account finds it: %d %s %q", a.status, a.body, a.header.Get("Location"))
	}
	if a := newAccount(newRawFrom(t, "strict", other), tos); a.status != 201 {
		t.Fatalf("ok/another address registers: %d %s", a.status, a.body)
	}
	c, b := newRawFrom(t, "eab", from), newBinder(t, "eab")
	if a := newAccount(c, map[string]any{"termsOfServiceAgreed": true, "externalAccountBinding": b.bind(c.url("newAccount"), jwkOf(c.key), nil)}); a.status != 201 {
		t.Fatalf("ok/a registration with a binding: %d %s", a.status, a.body)
	}
	srv.clock.Advance(39 * time.Minute)
	refused("fail/39 minutes on", "60")
	srv.clock.Advance(time.Minute)
	refused("fail/the first aged out, and the binding's account counts", "1200")
	srv.clock.Advance(20 * time.Minute)
	if a := newAccount(newRawFrom(t, "strict", from), tos); a.status != 201 {
		t.Fatalf("ok/at Retry-After: %d %s", a.status, a.body)
	}
}
