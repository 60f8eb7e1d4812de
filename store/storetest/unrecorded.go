package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"pkid/store"
)

// testUnrecorded: a revocation listed with no record (a certificate a CRL
// revoked, issued after a restored store's copy was made) is on its
// issuer's CRL list only, counted once, kept across a reopen and pruned as
// any entry; listing it again changes nothing unless it raises the reason
// to keyCompromise (the time stays). A serial with a record is not listed
// this way, and no record is invented for one that has none. A record of
// a serial so listed is refused valid and takes the entry's place revoked.
func testUnrecorded(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	const issuer = "unrecorded-issuer"
	rec := Record("default")
	rec.Issuer = issuer
	if err := s.InsertCertificate(ctx, rec); err != nil {
		t.Fatal(err)
	}
	add := func(e store.RevokedEntry) bool {
		t.Helper()
		added, err := s.AddUnrecordedRevocation(ctx, issuer, e)
		if err != nil {
			t.Fatal(err)
		}
		return added
	}
	listed := func() map[string]store.RevokedEntry {
		t.Helper()
		list, err := s.ListRevoked(ctx, issuer)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]store.RevokedEntry{}
		for _, e := range list {
			m[e.Serial] = e
		}
		return m
	}
	seq := func() uint64 {
		t.Helper()
		n, err := s.RevocationSeq(ctx, issuer)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if add(store.RevokedEntry{Serial: rec.Serial, RevokedAt: t0, Reason: "superseded", NotAfter: rec.NotAfter}) || len(listed()) != 0 {
		t.Fatal("fail/a serial with a record was listed without it")
	}
	before := seq()
	e := store.RevokedEntry{Serial: RandomSerial(), RevokedAt: t0, Reason: "superseded", NotAfter: t0.Add(time.Hour)}
	if !add(e) || seq() != before+1 || listed()[e.Serial] != e {
		t.Fatalf("ok/listed: %+v, count %d after %d", listed(), seq(), before)
	}
	if add(e) || add(store.RevokedEntry{Serial: e.Serial, RevokedAt: t0.Add(time.Minute), Reason: "unspecified", NotAfter: e.NotAfter}) || seq() != before+1 || listed()[e.Serial] != e {
		t.Fatalf("ok/listed again, or with a lesser reason: nothing changes: %+v", listed()[e.Serial])
	}
	if !add(store.RevokedEntry{Serial: e.Serial, RevokedAt: t0.Add(5 * time.Hour), Reason: "keyCompromise", NotAfter: e.NotAfter}) || seq() != before+2 {
		t.Fatal("ok/raised to keyCompromise: not written")
	}
	e.Reason = "keyCompromise"
	if got := listed()[e.Serial]; got != e {
		t.Fatalf("ok/raised: %+v, want %+v (its time kept)", got, e)
	}
	if got, err := s.UnrecordedRevocation(ctx, issuer, e.Serial); err != nil || got != e {
		t.Fatalf("ok/looked up: %+v %v, want %+v", got, err, e)
	}
	for _, tc := range []struct{ issuer, serial string }{{"another-issuer", e.Serial}, {issuer, rec.Serial}, {issuer, RandomSerial()}, {issuer, "zz"}} {
		if _, err := s.UnrecordedRevocation(ctx, tc.issuer, tc.serial); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("fail/looked up %s of %s: %v", tc.serial, tc.issuer, err)
		}
	}
	if list, err := s.ListRevoked(ctx, "another-issuer"); err != nil || len(list) != 0 {
		t.Fatalf("fail/listed for another issuer: %v %v", list, err)
	}
	if _, err := s.GetCertificate(ctx, e.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/a record was made for it: %v", err)
	}
	for _, bad := range []string{"", "zz", "-1f", "0"} {
		if _, err := s.AddUnrecordedRevocation(ctx, issuer, store.RevokedEntry{Serial: bad, RevokedAt: t0, Reason: "superseded", NotAfter: t0}); err == nil {
			t.Fatalf("fail/serial %q listed", bad)
		}
	}
	// A record of a serial listed without one: refused valid, with nothing
	// written; taken revoked, in the entry's place (listed once, with the
	// record's notAfter).
	const other = "adopting-issuer"
	listedOnly := store.RevokedEntry{Serial: RandomSerial(), RevokedAt: t0, Reason: "superseded", NotAfter: t0.Add(time.Hour)}
	if added, err := s.AddUnrecordedRevocation(ctx, other, listedOnly); err != nil || !added {
		t.Fatalf("ok/listed for %s: %v %v", other, added, err)
	}
	r := Record("default")
	r.Serial, r.Issuer = listedOnly.Serial, other
	// Its key blocked too (another certificate of it revoked for
	// keyCompromise): the listing is what the refusal names, so the caller
	// knows to record it revoked, which the block does not refuse.
	blocker := Record("default")
	blocker.KeyHash, blocker.Status, blocker.RevokedAt, blocker.Reason = r.KeyHash, store.StatusRevoked, t0, "keyCompromise"
	if err := s.InsertCertificate(ctx, blocker); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertCertificate(ctx, r); !errors.Is(err, store.ErrListedRevoked) {
		t.Fatalf("fail/a valid record of a serial listed revoked, its key blocked: %v", err)
	}
	if _, err := s.GetCertificate(ctx, r.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fail/the refused record was written: %v", err)
	}
	r.Status, r.RevokedAt, r.Reason = store.StatusRevoked, listedOnly.RevokedAt, listedOnly.Reason
	if err := s.InsertCertificate(ctx, r); err != nil {
		t.Fatalf("ok/a revoked record of a serial listed revoked: %v", err)
	}
	if _, err := s.UnrecordedRevocation(ctx, other, r.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/the entry without a record is gone: %v", err)
	}
	if list, err := s.ListRevoked(ctx, other); err != nil || len(list) != 1 || list[0].Serial != r.Serial || !list[0].NotAfter.Equal(r.NotAfter) || list[0].Reason != r.Reason {
		t.Fatalf("ok/listed once, as the record: %+v %v", list, err)
	}

	s.Close()
	s = open(t)
	defer s.Close()
	if got := listed()[e.Serial]; got != e || seq() != before+2 {
		t.Fatalf("ok/after a reopen: %+v, count %d", got, seq())
	}
	if n, err := s.PruneRevoked(ctx, issuer, t0.Add(2*time.Hour), t0.Add(time.Hour), 10); err != nil || n != 1 || len(listed()) != 0 {
		t.Fatalf("ok/pruned once expired: %d %v, left %v", n, err, listed())
	}
}
