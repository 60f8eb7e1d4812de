package ca_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestCRLAfterRevocationRetried: the CRL a revocation asks for cannot be
// stored (the store's file may not grow past its meta pages: RLIMIT_FSIZE,
// as a full disk), so the publisher owes it and tries again every tick;
// once the store works the revocation is on the served CRL within a few
// ticks, not at the next scheduled CRL half a validity (30 minutes) later.
//
// Not parallel: the limit holds for the whole test process while it is set.
func TestCRLAfterRevocationRetried(t *testing.T) {
	a, _, _ := newAuthority(t, "ec-p256")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := ca.NewCRLPublisher(a, time.Hour, quiet)
	pub.Tick, pub.Coalesce = 20*time.Millisecond, 300*time.Millisecond
	if _, err := pub.Generate(ctx, true); err != nil {
		t.Fatal(err)
	}
	go pub.Run(ctx)
	iss := issue(t, a, "owed.internal", time.Hour)

	if _, _, err := a.Revoke(ctx, iss.Record.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	// The revocation is committed; its CRL is made after Coalesce, with
	// the store unable to commit.
	lift := testutil.LimitFileSize(t, 8<<10)
	time.Sleep(pub.Coalesce + 10*pub.Tick)
	lift()
	listed := func() bool {
		cur, err := pub.Current(ctx)
		if err != nil {
			return false
		}
		rl, err := x509.ParseRevocationList(cur.DER)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if ca.SerialString(e.SerialNumber) == iss.Record.Serial {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(testutil.DutyWait)
	for !listed() {
		if time.Now().After(deadline) {
			t.Fatalf("the revocation is not on the CRL %s after the store works again", testutil.DutyWait)
		}
		time.Sleep(pub.Tick)
	}
}
