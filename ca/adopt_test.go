package ca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store"
)

// TestAdopt: a store restored from a copy made before some certificates
// were issued knows nothing of them: they cannot renew. Adopted under
// their role they are recorded as issued (names, validity, key, the
// last authorization at their issuance, the operator as authorizer) and
// renew over mTLS, or only through ACME when adopted as ACME's; adopted
// again nothing changes. Refused, with nothing written: another CA's
// certificate, a forged signature, an unknown role, a role that would not
// issue it, an expired one, one whose key is blocked. One revoked after
// the copy (listed on the CRL without a record) is refused too, and
// recorded revoked in that entry's place (OCSP then answers "revoked",
// and the entry leaves the CRL after its notAfter).
func TestAdopt(t *testing.T) {
	strict := &policies.Role{Name: "strict", AllowedDomains: []string{"strict.internal"}, AllowSubdomains: true,
		DefaultTTL: time.Hour, MaxTTL: 2 * time.Hour, KeyTypes: policies.KnownKeyTypes, ExtKeyUsage: []string{"server_auth", "client_auth"}}
	def := defaultRole()
	def.Renewal = policies.Renewal{Enabled: true, MaxAge: 720 * time.Hour}
	a, st, clk := newAuthority(t, "ec-p256", def, strict)
	ctx := context.Background()
	leaked := freshKey(t)
	before := issueFor(t, a, "before.internal", time.Hour, leaked)
	restored := copyStore(t, st)

	post := issue(t, a, "post.internal", time.Hour)
	again := issue(t, a, "again.internal", time.Hour)
	viaACME := issue(t, a, "acme.internal", time.Hour)
	sameKey := issueFor(t, a, "leaked.internal", time.Hour, leaked)
	revoked := issue(t, a, "revoked.internal", time.Hour)
	if _, _, err := a.Revoke(ctx, revoked.Record.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	compromised := freshKey(t)
	kc1 := issueFor(t, a, "kc1.internal", time.Hour, compromised)
	kc2 := issueFor(t, a, "kc2.internal", time.Hour, compromised)
	if _, _, err := a.Revoke(ctx, kc1.Record.Serial, "keyCompromise"); err != nil { // kc2 with it
		t.Fatal(err)
	}
	crl, err := ca.NewCRLPublisher(a, 24*time.Hour, quiet).Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	soon := issue(t, a, "soon.internal", time.Minute)

	tc := testutil.CA(t, "ec-p256")
	b, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: a.Roles(), Store: restored, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReapplyCRL(ctx, crl.DER); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Revoke(ctx, before.Record.Serial, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	leaf := func(iss *ca.Issued) *x509.Certificate {
		t.Helper()
		c, err := x509.ParseCertificate(iss.Record.DER)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := b.Renew(ctx, leaf(post), nil); errs.KindOf(err) != errs.Unauthorized || !strings.Contains(err.Error(), "has no record at this CA") || errs.RetryAfterOf(err) != ca.NoRecordRetry {
		t.Fatalf("before the adoption, a renewal: %v", err)
	}

	got, err := b.Adopt(ctx, post.Record.DER, "default", "admin-socket", false)
	if err != nil || got.Already {
		t.Fatalf("ok/adopt: %+v %v", got, err)
	}
	rec, err := restored.GetCertificate(ctx, post.Record.Serial)
	want := post.Record
	if err != nil || rec.Via != store.ViaAdopted || rec.Requester != "adopted" || rec.AuthorizedBy != "admin-socket" ||
		!rec.AuthorizedAt.Equal(want.NotBefore.Add(policies.Backdate)) || rec.Role != "default" || rec.Issuer != want.Issuer ||
		strings.Join(rec.Names, ",") != "post.internal" || rec.KeyHash != want.KeyHash || !rec.NotAfter.Equal(want.NotAfter) ||
		rec.Status != store.StatusValid || !bytes.Equal(rec.DER, want.DER) {
		t.Fatalf("ok/the record: %+v (%v)\nissued as %+v", rec, err, want)
	}
	renewed, err := b.Renew(ctx, leaf(post), nil)
	if err != nil || renewed.Record.Replaces != post.Record.Serial || renewed.Record.AuthorizedBy != "admin-socket" {
		t.Fatalf("ok/an adopted certificate renews: %+v %v", renewed, err)
	}
	if got, err := b.Adopt(ctx, post.Record.DER, "default", "admin-socket", false); err != nil || !got.Already || got.Record.Serial != post.Record.Serial {
		t.Fatalf("ok/adopted again: %+v %v", got, err)
	}
	if _, err := b.Adopt(ctx, viaACME.Record.DER, "default", "admin-socket", true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Renew(ctx, leaf(viaACME), nil); errs.KindOf(err) != errs.Forbidden || !strings.Contains(err.Error(), "renew it through ACME") {
		t.Fatalf("fail/adopted as ACME's, over mTLS: %v", err)
	}

	forged := bytes.Clone(again.Record.DER)
	forged[len(forged)-3] ^= 0xff // in the signature
	other, _, _ := newAuthority(t, "ec-p384")
	foreign := issue(t, other, "foreign.internal", time.Hour)
	for _, tc := range []struct {
		name, role string
		der        []byte
		kind       errs.Kind
		detail     string
	}{
		{"fail/not a certificate", "default", []byte("junk"), errs.Malformed, "not a certificate"},
		{"fail/another CA's", "default", foreign.Record.DER, errs.Forbidden, "not by this CA's intermediate nor a retired one"},
		{"fail/a forged signature", "default", forged, errs.Forbidden, "its signature does not verify"},
		{"fail/an unknown role", "nosuch", again.Record.DER, errs.NotFound, `unknown role "nosuch"`},
		{"fail/a role that would not issue it", "strict", again.Record.DER, errs.Forbidden, `is not one role "strict" issues now: DNS name "again.internal"`},
		{"fail/its key blocked", "default", sameKey.Record.DER, errs.Forbidden, "has a key blocked by a keyCompromise revocation"},
	} {
		if _, err := b.Adopt(ctx, tc.der, tc.role, "admin-socket", false); errs.KindOf(err) != tc.kind || !strings.Contains(errs.DetailOf(err), tc.detail) {
			t.Errorf("%s: %v (%s), want %s with %q", tc.name, err, errs.KindOf(err), tc.kind, tc.detail)
		}
	}
	// Revoked after the copy, it is listed on the CRL without a record:
	// refused for renewal, it is recorded revoked in that entry's place.
	entry, err := restored.UnrecordedRevocation(ctx, b.IssuerID(), revoked.Record.Serial)
	if err != nil {
		t.Fatalf("before: the revocation after the copy is listed without a record: %v", err)
	}
	listedAt := entry.RevokedAt
	if _, err := b.Adopt(ctx, revoked.Record.DER, "default", "admin-socket", false); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "was revoked (superseded) at") || !strings.Contains(errs.DetailOf(err), "recorded as revoked") {
		t.Fatalf("fail/revoked after the copy: %v", err)
	}
	if rec, err := restored.GetCertificate(ctx, revoked.Record.Serial); err != nil || rec.Status != store.StatusRevoked || rec.Reason != "superseded" || !rec.RevokedAt.Equal(listedAt) {
		t.Fatalf("ok/recorded revoked as the CRL listed it: %+v %v (want at %s)", rec, err, listedAt)
	}
	if _, err := restored.UnrecordedRevocation(ctx, b.IssuerID(), revoked.Record.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/the record takes the entry's place: %v", err)
	}
	if list, _ := restored.ListRevoked(ctx, b.IssuerID()); len(slices.DeleteFunc(list, func(e store.RevokedEntry) bool { return e.Serial != revoked.Record.Serial })) != 1 {
		t.Fatalf("ok/listed once: %+v", list)
	}
	if _, err := b.Adopt(ctx, revoked.Record.DER, "default", "admin-socket", false); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "is recorded as revoked (superseded)") {
		t.Fatalf("fail/adopted again once recorded revoked: %v", err)
	}
	if _, err := b.Renew(ctx, leaf(revoked), nil); err == nil {
		t.Fatal("fail/the revoked one renews")
	}

	// Revoked for keyCompromise after the copy, the key was not blocked in
	// the restored store (no record, no key): recorded, it is blocked again;
	// the key's other certificate, listed too, is recorded revoked as well.
	if blocked, _ := b.KeyBlocked(ctx, compromised.Public()); blocked {
		t.Fatal("before: the key revoked after the copy is blocked in the restored store")
	}
	for _, iss := range []*ca.Issued{kc1, kc2} {
		if _, err := b.Adopt(ctx, iss.Record.DER, "default", "admin-socket", false); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "was revoked (keyCompromise) at") {
			t.Fatalf("fail/revoked for keyCompromise after the copy: %v", err)
		}
		if rec, err := restored.GetCertificate(ctx, iss.Record.Serial); err != nil || rec.Status != store.StatusRevoked || rec.Reason != "keyCompromise" {
			t.Fatalf("ok/recorded revoked (keyCompromise): %+v %v", rec, err)
		}
	}
	if blocked, _ := b.KeyBlocked(ctx, compromised.Public()); !blocked {
		t.Fatal("ok/the compromised key is blocked again")
	}

	clk.Advance(2 * time.Minute)
	if _, err := b.Adopt(ctx, soon.Record.DER, "default", "admin-socket", false); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "expired at") {
		t.Errorf("fail/expired: %v", err)
	}
	for _, sn := range []string{again.Record.Serial, sameKey.Record.Serial, soon.Record.Serial, foreign.Record.Serial} {
		if _, err := restored.GetCertificate(ctx, sn); err == nil {
			t.Errorf("a refused adoption recorded %s", sn)
		}
	}
}
