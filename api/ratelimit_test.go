package api_test

import (
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/internal/testutil"
)

// TestRateLimit: the "metered" role allows two certificates a minute to
// one credential. The third gets 429 with Retry-After in seconds and a
// problem naming the credential; another token has its own allowance; a
// single-use enrollment token refused for the rate is not spent, and
// works once the allowance is back.
func TestRateLimit(t *testing.T) {
	s := shared
	key := testutil.LeafKey(t, "ec-p256")
	csr := map[string]string{"csr": csrPEM(t, key, "a.metered.internal")}
	tok := tokenFor(t, s, "metered", func(o *api.TokenOptions) { o.Name = "meter-a" })
	for i := range 2 {
		if r := s.do(t, "POST", "/v1/sign/metered", tok, csr, nil); r.StatusCode != 201 {
			t.Fatalf("ok/certificate %d of 2: %d", i+1, r.StatusCode)
		}
	}
	const series = `pkid_rate_limited_total{limit="roles.metered.rate_limit"}`
	before := max(testutil.Metric(t, s.client, s.base, series), 0)
	for _, tc := range []struct {
		path string
		body any
	}{
		{"/v1/sign/metered", csr},
		{"/v1/issue/metered", map[string]string{"common_name": "a.metered.internal"}},
	} {
		var p api.Problem
		r := s.do(t, "POST", tc.path, tok, tc.body, &p)
		if r.StatusCode != 429 || r.Header.Get("Retry-After") != "30" || p.Type != "https://pkid.dev/problems/rateLimited" ||
			!strings.Contains(p.Detail, `role "metered" allows 2 certificates per 1m0s to one credential, and token:meter-a has had them; the next is allowed in 30s`) {
			t.Fatalf("fail/%s over the limit: %d %+v (Retry-After %q)", tc.path, r.StatusCode, p, r.Header.Get("Retry-After"))
		}
	}
	if got := testutil.Metric(t, s.client, s.base, series); got != before+2 {
		t.Fatalf("/metrics: %s %v, want %v", series, got, before+2)
	}
	other := tokenFor(t, s, "metered", func(o *api.TokenOptions) { o.Name = "meter-b" })
	if r := s.do(t, "POST", "/v1/sign/metered", other, csr, nil); r.StatusCode != 201 {
		t.Fatalf("ok/another token: %d", r.StatusCode)
	}

	// Enrollment tokens named alike count as one credential.
	enroll := func() string {
		return tokenFor(t, s, "metered", func(o *api.TokenOptions) { o.Name, o.Once, o.Names = "enroll-x", true, []string{"x.metered.internal"} })
	}
	one := map[string]string{"csr": csrPEM(t, key, "x.metered.internal")}
	for i := range 2 {
		if r := s.do(t, "POST", "/v1/sign/metered", enroll(), one, nil); r.StatusCode != 201 {
			t.Fatalf("ok/enrollment %d of 2: %d", i+1, r.StatusCode)
		}
	}
	third := enroll()
	if r := s.do(t, "POST", "/v1/sign/metered", third, one, nil); r.StatusCode != 429 {
		t.Fatalf("fail/third enrollment: %d", r.StatusCode)
	}
	s.clock.Advance(30 * time.Second)
	if r := s.do(t, "POST", "/v1/sign/metered", third, one, nil); r.StatusCode != 201 {
		t.Fatalf("ok/the refused enrollment token was not spent: %d", r.StatusCode)
	}
}
