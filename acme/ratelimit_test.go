package acme_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"
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
