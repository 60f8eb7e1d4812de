package api_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/testutil"
)

// TestClockSteppedBack: the server's clock ran ten days ahead, long enough
// for it to renew its own certificate, sign its CRL and count a rate
// limit on that clock; then NTP stepped it back. With no restart, within a
// tick: the server presents a certificate valid on the clock (the one
// signed ahead is "not yet valid" to every client for ten days), /crl
// answers a CRL dated on the clock even to a client that sends the
// Last-Modified of the one signed ahead, and the rate limit counted ahead
// does not refuse the credential for ten days.
func TestClockSteppedBack(t *testing.T) {
	s := shared
	const step = 10 * 24 * time.Hour
	s.advance(t, 0)
	s.clock.Step(step)
	s.advance(t, 0) // the server certificate is renewed on the clock ahead
	aheadCert := s.servedCert(t)
	metered := tokenFor(t, s, "metered", func(o *api.TokenOptions) { o.Name = "meter-step" })
	csr := map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "step.metered.internal")}
	for i := range 2 {
		if r := s.do(t, "POST", "/v1/sign/metered", metered, csr, nil); r.StatusCode != 201 {
			t.Fatalf("ok/certificate %d of 2 on the clock ahead: %d", i+1, r.StatusCode)
		}
	}
	var aheadCRL *x509.RevocationList
	var lastModified string
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		rl, lm := getCRL(t, s, "")
		if !rl.ThisUpdate.Before(aheadCert.NotBefore) {
			aheadCRL, lastModified = rl, lm
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no CRL signed on the clock ahead")
		}
	}

	s.clock.Step(-step)
	roots := s.client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.base, "https://"), &tls.Config{RootCAs: roots, ServerName: "localhost", Time: s.clock.Now})
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still presents a certificate that is not valid on its clock: %v", err)
		}
	}
	if c := s.servedCert(t); c.NotBefore.After(s.clock.Now()) || c.SerialNumber.Cmp(aheadCert.SerialNumber) == 0 {
		t.Fatalf("served certificate %x valid from %s, clock %s", c.SerialNumber, c.NotBefore, s.clock.Now())
	}
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		rl, _ := getCRL(t, s, lastModified)
		if rl != nil && !rl.ThisUpdate.After(s.clock.Now()) {
			if rl.Number.Cmp(aheadCRL.Number) <= 0 {
				t.Fatalf("the CRL number went back from %s to %s", aheadCRL.Number, rl.Number)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/crl still serves the CRL signed on the clock ahead (or 304 to its Last-Modified)")
		}
	}
	if r := s.do(t, "POST", "/v1/sign/metered", metered, csr, nil); r.StatusCode != 201 {
		t.Fatalf("fail/the rate limit counted on the clock ahead refuses: %d (Retry-After %s)", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// getCRL fetches /crl over plain HTTP, sending If-Modified-Since ims when
// it is not empty; it returns the CRL (nil for 304) and its Last-Modified.
func getCRL(t *testing.T, s *testServer, ims string) (*x509.RevocationList, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.http+"/crl", nil)
	if ims != "" {
		req.Header.Set("If-Modified-Since", ims)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, ims
	}
	der, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /crl: %d %v", resp.StatusCode, err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return rl, resp.Header.Get("Last-Modified")
}

// TestClockSteppedAhead: the server's clock is stepped a month ahead for a
// while, long enough for every timer duty to run on it, then set right.
// /healthz says the clock moved further than the time that passed while it
// does. Nothing was deleted as if the month had passed: a token valid for
// an hour still works, and a revoked certificate valid for an hour is
// still on the CRL (pruned, the operator's CI would stop, and a revoked
// certificate still valid would read as good on the CRL).
func TestClockSteppedAhead(t *testing.T) {
	s := shared
	const month = 30 * 24 * time.Hour
	s.advance(t, 0)
	tok := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Name, o.TTL = "step-ahead", time.Hour })
	var r api.IssueResponse
	if code := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": "ahead.internal", "ttl": "1h"}, &r).StatusCode; code != 201 {
		t.Fatalf("issue: %d", code)
	}
	if code := s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": r.Serial, "reason": "superseded"}, nil).StatusCode; code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	listed := func(rl *x509.RevocationList) bool {
		return rl != nil && slices.ContainsFunc(rl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool { return ca.SerialString(e.SerialNumber) == r.Serial })
	}
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		if rl, _ := getCRL(t, s, ""); listed(rl) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation is not on the CRL")
		}
	}

	s.clock.Step(month)
	s.advance(t, 0)
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		if rl, _ := getCRL(t, s, ""); rl.ThisUpdate.After(r.NotAfter) {
			break // a scheduled CRL after the certificate's notAfter
		}
		if time.Now().After(deadline) {
			t.Fatal("no CRL signed on the clock ahead")
		}
	}
	var h struct{ Warnings []string }
	if s.do(t, "GET", "/healthz", "", nil, &h); !slices.ContainsFunc(h.Warnings, func(w string) bool { return strings.Contains(w, "moved 720h") }) {
		t.Fatalf("/healthz on the clock ahead: %q", h.Warnings)
	}
	time.Sleep(20 * 50 * time.Millisecond) // twenty of the server's ticks: every prune has run

	s.clock.Step(-month)
	s.advance(t, 0)
	if code := s.do(t, "GET", "/v1/roles", tok, nil, nil).StatusCode; code != 200 {
		t.Fatalf("the token valid for another hour was pruned on the clock ahead: %d", code)
	}
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		rl, _ := getCRL(t, s, "")
		if !rl.ThisUpdate.After(s.clock.Now()) {
			if !listed(rl) {
				t.Fatal("the revoked certificate, valid for another hour, is no longer on the CRL")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no CRL dated on the clock set right")
		}
	}
	h.Warnings = nil
	if s.do(t, "GET", "/healthz", "", nil, &h); slices.ContainsFunc(h.Warnings, func(w string) bool { return strings.Contains(w, "further than the time") }) {
		t.Fatalf("/healthz after the clock was set right: %q", h.Warnings)
	}
}

// TestTokensMadeOnAClockAhead: tokens made while the clock ran a day ahead,
// used after it was set back. An enrollment token (minutes long, single
// use) is refused, saying why, since it would otherwise live a day longer
// unused; a long-lived token works, as CI jobs hold it.
func TestTokensMadeOnAClockAhead(t *testing.T) {
	s := shared
	s.advance(t, 0)
	ctx := context.Background()
	ahead := s.clock.Now().Add(24 * time.Hour)
	roles := s.run.Config.Roles
	enroll, _, err := api.CreateToken(ctx, s.run.Store, ahead, roles, api.TokenOptions{Name: "enroll-ahead", Roles: []string{"default"}, Once: true, Names: []string{"ahead.internal"}, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	long, _, err := api.CreateToken(ctx, s.run.Store, ahead, roles, api.TokenOptions{Name: "ci-ahead", Roles: []string{"default"}, TTL: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	csr := map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "ahead.internal")}
	var p api.Problem
	if r := s.do(t, "POST", "/v1/sign/default", enroll, csr, &p); r.StatusCode != 401 || !strings.Contains(p.Detail, "enrollment token enroll-ahead was made at") || !strings.Contains(p.Detail, "make a new one") {
		t.Fatalf("fail/enrollment token made a day ahead: %d %+v", r.StatusCode, p)
	}
	if r := s.do(t, "POST", "/v1/sign/default", long, csr, nil); r.StatusCode != 201 {
		t.Fatalf("ok/long-lived token made a day ahead: %d", r.StatusCode)
	}
}
