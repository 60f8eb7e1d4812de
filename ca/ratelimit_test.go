package ca_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/policies"
)

// TestRateLimit: a role's rate_limit counts certificates per credential:
// the requester of a token or ACME account, and for mTLS renewals the names
// the chain keeps (each renewal's requester is a new certificate). Check,
// Allowed and the issue path's key generation look without spending; the
// refusal says who, how many per what, and when the next is allowed.
func TestRateLimit(t *testing.T) {
	role := defaultRole()
	role.RateLimit = &policies.RateLimit{Certificates: 2, Per: time.Hour}
	role.Renewal = policies.Renewal{Enabled: true, MaxAge: 24 * time.Hour}
	a, _, clk := newAuthority(t, "ec-p256", role)
	ctx := context.Background()
	key := testutil.LeafKey(t, "ec-p256")
	req := func(requester string) *ca.SignRequest {
		return &ca.SignRequest{Role: "default", Requester: requester, CSR: makeCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"rl.internal"}})}
	}
	limited := func(t *testing.T, err error, who string, wait time.Duration) {
		t.Helper()
		if errs.KindOf(err) != errs.RateLimited || errs.RetryAfterOf(err) != wait || !strings.Contains(errs.DetailOf(err), `role "default" allows 2 certificates per 1h0m0s to one credential, and `+who+" has had them") {
			t.Fatalf("got %v (retry after %s), want rateLimited for %s after %s", err, errs.RetryAfterOf(err), who, wait)
		}
	}

	var last *ca.Issued
	for i := range 2 {
		if err := a.Check(ctx, req("token:ci")); err != nil {
			t.Fatalf("ok/Check before certificate %d: %v", i+1, err)
		}
		iss, err := a.Sign(ctx, req("token:ci"))
		if err != nil {
			t.Fatalf("ok/certificate %d of 2: %v", i+1, err)
		}
		last = iss
	}
	_, err := a.Sign(ctx, req("token:ci"))
	limited(t, err, "token:ci", 30*time.Minute)
	limited(t, a.Check(ctx, req("token:ci")), "token:ci", 30*time.Minute)
	limited(t, a.Allowed(ctx, "default", "token:ci"), "token:ci", 30*time.Minute)
	_, _, err = a.Issue(ctx, &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "default", Requester: "token:ci"}, CommonName: "rl.internal", KeyType: "rsa-4096"})
	limited(t, err, "token:ci", 30*time.Minute)
	if _, err := a.Sign(ctx, req("acme:other")); err != nil || a.Allowed(ctx, "default", "acme:other") != nil {
		t.Fatalf("ok/another credential: %v", err)
	}

	// Renewals of one name count together, whichever certificate renews.
	cert := parsePEM(t, last.PEM)
	for i := range 2 {
		ren, err := a.Renew(ctx, cert, nil)
		if err != nil {
			t.Fatalf("ok/renewal %d of 2: %v", i+1, err)
		}
		cert = parsePEM(t, ren.PEM)
	}
	_, err = a.Renew(ctx, cert, nil)
	limited(t, err, "renewals of rl.internal", 30*time.Minute)

	clk.Advance(30 * time.Minute)
	if _, err := a.Sign(ctx, req("token:ci")); err != nil {
		t.Fatalf("ok/one more after Per/Certificates: %v", err)
	}
	_, err = a.Sign(ctx, req("token:ci"))
	limited(t, err, "token:ci", 30*time.Minute)
	if _, err := a.Renew(ctx, cert, nil); err != nil {
		t.Fatalf("ok/a renewal after Per/Certificates: %v", err)
	}

	// Once every allowance is whole again the duty prunes the counts
	// (three keys: two credentials and one chain of renewals), which
	// then read as whole.
	clk.Advance(2 * time.Hour)
	a.PruneAllowances(ctx)
	if n, err := a.Store().PruneAllowances(ctx, clk.Now().Add(time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("ok/the duty left %d counts to prune (%v)", n, err)
	}
	for i := range 2 {
		if _, err := a.Sign(ctx, req("token:ci")); err != nil {
			t.Fatalf("ok/certificate %d of 2 after the prune: %v", i+1, err)
		}
	}

	// A role without a limit has none.
	b, _, _ := newAuthority(t, "ec-p256")
	for i := range 5 {
		if _, err := b.Sign(ctx, req("token:ci")); err != nil {
			t.Fatalf("certificate %d without a limit: %v", i+1, err)
		}
	}
}
