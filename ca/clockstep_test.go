package ca_test

import (
	"context"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestClockSteppedBack: the clock ran three days ahead while the CA
// signed its CRL and OCSP answers, then NTP stepped it back. Within a tick
// the running publisher signs the CRL again dated on the clock (one dated
// ahead is "not yet valid" to every relying party, for three days), with a
// number that still grows and the revoked certificate still listed; the
// responder does not serve its cached answer dated ahead.
func TestClockSteppedBack(t *testing.T) {
	a, _, clk := newAuthority(t, "ec-p256")
	ctx, cancel := context.WithCancel(context.Background())
	o, err := ca.NewOCSPResponder(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	revoked := issue(t, a, "revoked.internal", 168*time.Hour)
	if _, _, err := a.Revoke(ctx, revoked.Record.Serial, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	good := parsePEM(t, issue(t, a, "good.internal", 168*time.Hour).PEM)
	pub := ca.NewCRLPublisher(a, time.Hour, quiet)
	pub.Tick = 10 * time.Millisecond
	done := make(chan struct{})
	go func() { pub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	ocspThisUpdate := func() time.Time {
		t.Helper()
		resp, err := ocsp.ParseResponseForCert(o.Respond(ctx, ocspRequest(t, good, a.Intermediate())), good, a.Intermediate())
		if err != nil || resp.Status != ocsp.Good {
			t.Fatalf("OCSP: %v %v", resp, err)
		}
		return resp.ThisUpdate
	}
	waitCRL := func(what string, ok func(*x509.RevocationList) bool) *x509.RevocationList {
		t.Helper()
		for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(pub.Tick) {
			if cur, err := pub.Current(ctx); err == nil {
				rl, err := x509.ParseRevocationList(cur.DER)
				if err != nil || rl.CheckSignatureFrom(a.Intermediate()) != nil {
					t.Fatalf("CRL does not verify: %v", err)
				}
				if ok(rl) {
					return rl
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no CRL %s", what)
			}
		}
	}

	clk.Step(72 * time.Hour)
	aheadAt := clk.Now()
	ahead := waitCRL("signed on the clock ahead", func(rl *x509.RevocationList) bool { return !rl.ThisUpdate.Before(aheadAt.Truncate(time.Second)) })
	if got := ocspThisUpdate(); got.Before(aheadAt.Add(-time.Minute)) {
		t.Fatalf("OCSP answer on the clock ahead dated %s", got)
	}

	clk.Step(-72 * time.Hour)
	back := waitCRL("dated on the clock stepped back", func(rl *x509.RevocationList) bool { return !rl.ThisUpdate.After(clk.Now()) })
	if back.Number.Cmp(ahead.Number) <= 0 {
		t.Fatalf("the CRL number went back from %s to %s", ahead.Number, back.Number)
	}
	if !back.NextUpdate.Equal(back.ThisUpdate.Add(time.Hour)) {
		t.Fatalf("nextUpdate %s, thisUpdate %s", back.NextUpdate, back.ThisUpdate)
	}
	if !slices.ContainsFunc(back.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
		return ca.SerialString(e.SerialNumber) == revoked.Record.Serial
	}) {
		t.Fatal("the CRL signed after the step lost the revoked certificate")
	}
	if got := ocspThisUpdate(); got.After(clk.Now()) {
		t.Fatalf("OCSP answer dated %s after the clock (%s) was stepped back", got, clk.Now())
	}
}

// TestResponderAfterClockSteppedBack: an Ed25519 intermediate answers OCSP
// through a delegated responder certificate. One renewed while the clock
// ran three weeks ahead is not valid yet once the clock is set right, and
// relying parties would refuse every answer it signs: within a tick the
// responder is replaced by one valid on the clock, and answers carry it.
func TestResponderAfterClockSteppedBack(t *testing.T) {
	a, _, clk := newAuthority(t, "ed25519")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := ca.NewOCSPResponder(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEM(t, issue(t, a, "o.internal", 168*time.Hour).PEM)
	go o.Run(ctx, time.Millisecond)
	first := o.Responder()
	clk.Step(21 * 24 * time.Hour) // past two thirds of its 30 days
	for deadline := time.Now().Add(testutil.DutyWait); o.Responder().Equal(first); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("responder not renewed on the clock ahead")
		}
	}
	ahead := o.Responder()
	clk.Step(-21 * 24 * time.Hour)
	for deadline := time.Now().Add(testutil.DutyWait); o.Responder().Equal(ahead); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the responder valid from %s is still used on a clock reading %s", ahead.NotBefore, clk.Now())
		}
	}
	if r := o.Responder(); r.NotBefore.After(clk.Now()) {
		t.Fatalf("new responder valid from %s, clock %s", r.NotBefore, clk.Now())
	}
	resp, err := ocsp.ParseResponseForCert(o.Respond(ctx, ocspRequest(t, leaf, a.Intermediate())), leaf, a.Intermediate())
	if err != nil || !resp.Certificate.Equal(o.Responder()) || resp.ThisUpdate.After(clk.Now()) {
		t.Fatalf("answer after the step: %v (responder %v)", err, resp)
	}
}
