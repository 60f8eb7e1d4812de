package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/store"
)

// lateStore is the store as one side of a race sees it: the first call of
// method for serial runs race (the other side's write) just before it;
// a read (GetCertificate) then misses what race wrote, as a read made
// just before that write would, and an insert (InsertCertificate) meets
// it.
type lateStore struct {
	*store.Bolt
	method, serial string
	race           func()
	once           sync.Once
}

func (s *lateStore) late(method, serial string) bool {
	missed := false
	if method == s.method && serial == s.serial {
		s.once.Do(func() {
			if s.race != nil {
				s.race()
			}
			missed = true
		})
	}
	return missed
}

func (s *lateStore) GetCertificate(ctx context.Context, serial string) (*store.CertRecord, error) {
	if s.late("GetCertificate", serial) {
		return nil, store.ErrNotFound
	}
	return s.Bolt.GetCertificate(ctx, serial)
}

func (s *lateStore) InsertCertificate(ctx context.Context, rec *store.CertRecord) error {
	s.late("InsertCertificate", rec.Serial)
	return s.Bolt.InsertCertificate(ctx, rec)
}

// TestReapplyRacesAdoption: `pkid cert revoke --from-crl` and `pkid cert
// adopt` of the same certificate, at once. Whichever order their reads
// and writes fall in, the certificate ends revoked as the CRL lists it:
// a reapply whose read came before the adoption's insert revokes the
// record it then finds, rather than calling the entry listed already;
// an adoption whose insert comes just after the reapply's listing has its
// valid record refused by the store (ErrListedRevoked), records it
// revoked, and says so. (Note 29 left both unguarded; each half
// fails on the code before.)
func TestReapplyRacesAdoption(t *testing.T) {
	a, st, clk := newAuthority(t, "ec-p256")
	tc := testutil.CA(t, "ec-p256")
	ctx := context.Background()
	at := clk.Now().UTC().Truncate(time.Second)
	listing := func(sn string) []byte {
		n, _ := new(big.Int).SetString(sn, 16)
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(at.UnixNano()), ThisUpdate: at, NextUpdate: at.Add(time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: n, RevocationTime: at, ReasonCode: ca.Reasons["superseded"]}}}, tc.Intermediate, tc.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	over := func(s store.Store) *ca.Authority {
		b, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: a.Roles(), Store: s, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	revokedAsListed := func(s *store.Bolt, sn string) {
		t.Helper()
		rec, err := s.GetCertificate(ctx, sn)
		if err != nil || rec.Status != store.StatusRevoked || rec.Reason != "superseded" || !rec.RevokedAt.Equal(at) {
			t.Fatalf("%s: %+v %v, want revoked (superseded) at %s", sn, rec, err, at)
		}
	}

	// The reapply reads no record; the adoption's record is there when it
	// comes to write.
	adopted := issue(t, a, "adopted.internal", time.Hour).Record.Serial
	got, err := over(&lateStore{Bolt: st, method: "GetCertificate", serial: adopted}).ReapplyCRL(ctx, listing(adopted))
	if err != nil || len(got.Revoked) != 1 || got.Already != 0 || len(got.Unrecorded) != 0 {
		t.Fatalf("ok/reapply after the record appeared: %+v %v", got, err)
	}
	revokedAsListed(st, adopted)

	// The adoption finds no entry; the reapply lists it before the
	// adoption's insert.
	restored := copyStore(t, st)
	late := issue(t, a, "late.internal", time.Hour).Record
	racy := &lateStore{Bolt: restored, method: "InsertCertificate", serial: late.Serial, race: func() {
		if _, err := over(restored).ReapplyCRL(ctx, listing(late.Serial)); err != nil {
			t.Error(err)
		}
	}}
	_, err = over(racy).Adopt(ctx, late.DER, "default", "admin-socket", false)
	if errs.KindOf(err) != errs.Forbidden || !strings.Contains(err.Error(), "recorded as revoked") {
		t.Fatalf("ok/adopt while the CRL lists it: %v", err)
	}
	revokedAsListed(restored, late.Serial)
	leaf, err := x509.ParseCertificate(late.DER)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := over(restored).Renew(ctx, leaf, nil); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("ok/it does not renew: %v", err)
	}
}
