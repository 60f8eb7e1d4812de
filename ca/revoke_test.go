package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// issue signs a certificate for name with a key of its own: a
// keyCompromise revocation takes every certificate of its key with it.
func issue(t *testing.T, a *ca.Authority, name string, ttl time.Duration) *ca.Issued {
	t.Helper()
	return issueFor(t, a, name, ttl, freshKey(t))
}

func freshKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issueFor signs a certificate for name and key.
func issueFor(t *testing.T, a *ca.Authority, name string, ttl time.Duration, key crypto.Signer) *ca.Issued {
	t.Helper()
	iss, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", TTL: ttl, CSR: makeCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}})})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestRevokeRules(t *testing.T) {
	a, _, clk := newAuthority(t, "ec-p256")
	ctx := context.Background()
	key := freshKey(t)
	iss := issueFor(t, a, "r.internal", time.Hour, key)
	if _, _, err := a.Revoke(ctx, iss.Record.Serial, "certificateHold"); errs.KindOf(err) != errs.BadRevocationReason {
		t.Fatalf("fail/certificateHold: %v", err)
	}
	if _, _, err := a.Revoke(ctx, "abcdef", ""); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("fail/unknown serial: %v", err)
	}
	rec, _, err := a.Revoke(ctx, strings.ToUpper(iss.Record.Serial), "")
	if err != nil || rec.Reason != "unspecified" || !rec.RevokedAt.Equal(clk.Now()) {
		t.Fatalf("ok/revoke: %+v %v", rec, err)
	}
	if _, _, err := a.Revoke(ctx, iss.Record.Serial, "superseded"); errs.KindOf(err) != errs.AlreadyRevoked {
		t.Fatalf("fail/again: %v", err)
	}
	if rec, _, err := a.Revoke(ctx, iss.Record.Serial, "keyCompromise"); err != nil || rec.Reason != "keyCompromise" {
		t.Fatalf("ok/raise: %v", err)
	}
	if _, _, err := a.Revoke(ctx, iss.Record.Serial, "keyCompromise"); errs.KindOf(err) != errs.AlreadyRevoked {
		t.Fatalf("fail/keyCompromise twice: %v", err)
	}
	again := &ca.SignRequest{Role: "default", CSR: makeCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "other.internal"}})}
	_, err = a.Sign(ctx, again)
	if errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "keyCompromise") {
		t.Fatalf("fail/compromised key signed again: %v", err)
	}
	// Check, run before an enrollment token is spent, refuses it too.
	if err := a.Check(ctx, again); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "keyCompromise") {
		t.Fatalf("fail/check of a compromised key: %v", err)
	}
	old, err := a.Sign(ctx, &ca.SignRequest{Role: "default", TTL: time.Minute, CSR: makeCSR(t, testutil.LeafKey(t, "ed25519"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "old.internal"}})})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if _, _, err := a.Revoke(ctx, old.Record.Serial, ""); errs.KindOf(err) != errs.Conflict || !strings.Contains(errs.DetailOf(err), "expired") {
		t.Fatalf("fail/expired: %v", err)
	}
	// A key found leaked after its certificate expired is still blocked.
	if rec, _, err := a.Revoke(ctx, old.Record.Serial, "keyCompromise"); err != nil || rec.Status != store.StatusRevoked || rec.Reason != "keyCompromise" {
		t.Fatalf("ok/expired, keyCompromise: %+v %v", rec, err)
	}
	_, err = a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: makeCSR(t, testutil.LeafKey(t, "ed25519"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "again.internal"}})})
	if errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "keyCompromise") {
		t.Fatalf("fail/key of an expired, compromised certificate signed again: %v", err)
	}
}

// TestKeyCompromiseRevokesSameKey: a keyCompromise revocation (or a reason
// raised to it) revokes every other certificate of the key still valid,
// at the same time, and they reach the CRL and OCSP; certificates of
// other keys, and those of the key already expired or revoked, stay as
// they are.
func TestKeyCompromiseRevokesSameKey(t *testing.T) {
	a, st, clk := newAuthority(t, "ec-p256")
	ctx := context.Background()
	ocspCache, err := ca.NewOCSPResponder(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	pub := ca.NewCRLPublisher(a, time.Hour, quiet)
	leaked, other := freshKey(t), freshKey(t)
	expired := issueFor(t, a, "e.internal", time.Minute, leaked)
	clk.Advance(2 * time.Minute)
	first := issueFor(t, a, "a.internal", time.Hour, leaked)
	twin := issueFor(t, a, "b.internal", time.Hour, leaked)
	superseded := issueFor(t, a, "s.internal", time.Hour, leaked)
	bystander := issueFor(t, a, "c.internal", time.Hour, other)
	if _, _, err := a.Revoke(ctx, superseded.Record.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	if _, sameKey, err := a.Revoke(ctx, bystander.Record.Serial, "unspecified"); err != nil || len(sameKey) != 0 {
		t.Fatalf("ok/another reason takes no other certificate: %v %v", sameKey, err)
	}
	// The good answer is cached before the revocation.
	if r := ocspStatus(t, a, ocspCache, twin); r != ocsp.Good {
		t.Fatalf("twin before: %d", r)
	}
	clk.Advance(time.Minute)
	rec, sameKey, err := a.Revoke(ctx, first.Record.Serial, "keyCompromise")
	if err != nil || len(sameKey) != 1 || sameKey[0].Serial != twin.Record.Serial {
		t.Fatalf("ok/keyCompromise takes the key's other valid certificate: %v %v", sameKey, err)
	}
	got, err := st.GetCertificate(ctx, twin.Record.Serial)
	if err != nil || got.Status != store.StatusRevoked || got.Reason != "keyCompromise" || !got.RevokedAt.Equal(rec.RevokedAt) {
		t.Fatalf("ok/twin recorded revoked with the same time: %+v %v", got, err)
	}
	for _, c := range []struct {
		iss         *ca.Issued
		status, why string
	}{{expired, store.StatusValid, "expired before"}, {superseded, store.StatusRevoked, "already revoked"}, {bystander, store.StatusRevoked, "another key"}} {
		got, _ := st.GetCertificate(ctx, c.iss.Record.Serial)
		if got.Status != c.status || got.Reason == "keyCompromise" {
			t.Fatalf("ok/%s left alone: %+v", c.why, got)
		}
	}
	if r := ocspStatus(t, a, ocspCache, twin); r != ocsp.Revoked {
		t.Fatalf("ok/OCSP of the twin after: %d", r)
	}
	crl, err := pub.Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := x509.ParseRevocationList(crl.DER)
	listed := map[string]int{}
	for _, e := range rl.RevokedCertificateEntries {
		listed[ca.SerialString(e.SerialNumber)] = e.ReasonCode
	}
	if listed[twin.Record.Serial] != 1 || listed[first.Record.Serial] != 1 {
		t.Fatalf("ok/CRL lists both for keyCompromise: %v", listed)
	}
	// A reason raised to keyCompromise reaches the key's others too.
	k2 := freshKey(t)
	a1, a2 := issueFor(t, a, "r1.internal", time.Hour, k2), issueFor(t, a, "r2.internal", time.Hour, k2)
	if _, sameKey, err := a.Revoke(ctx, a1.Record.Serial, "superseded"); err != nil || len(sameKey) != 0 {
		t.Fatalf("superseded: %v %v", sameKey, err)
	}
	if _, sameKey, err := a.Revoke(ctx, a1.Record.Serial, "keyCompromise"); err != nil || len(sameKey) != 1 || sameKey[0].Serial != a2.Record.Serial {
		t.Fatalf("ok/raised to keyCompromise takes the other: %v %v", sameKey, err)
	}
}

// ocspStatus is the responder's answer for iss.
func ocspStatus(t *testing.T, a *ca.Authority, o *ca.OCSPResponder, iss *ca.Issued) int {
	t.Helper()
	leaf := parsePEM(t, iss.PEM)
	resp, err := ocsp.ParseResponseForCert(o.Respond(context.Background(), ocspRequest(t, leaf, a.Intermediate())), leaf, a.Intermediate())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status
}

// TestRenewalOfRevokedRefusedAtCommit: a successor whose predecessor was
// revoked after the renewal's checks (here: Sign called directly with
// Replaces and Via "renew") is refused by the commit itself and recorded nowhere.
func TestRenewalOfRevokedRefusedAtCommit(t *testing.T) {
	a, st, _ := newAuthority(t, "ec-p256")
	ctx := context.Background()
	old := issue(t, a, "gone.internal", time.Hour)
	if _, _, err := a.Revoke(ctx, old.Record.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	_, err := a.Sign(ctx, &ca.SignRequest{Role: "default", Via: "renew", Replaces: old.Record.Serial, CSR: makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gone.internal"}})})
	if errs.KindOf(err) != errs.Unauthorized || !strings.Contains(errs.DetailOf(err), "revoked while it was being renewed") {
		t.Fatalf("successor of a revoked certificate: %v", err)
	}
	if recs, _, _ := st.ListCertificates(ctx, store.ListFilter{Role: "default"}); len(recs) != 1 {
		t.Fatalf("%d records, want only the revoked one", len(recs))
	}
}

// TestExpiredIntermediateIssuesNothing: past the intermediate's notAfter
// every issuance is refused as unavailable, naming the date, rather than
// signing a certificate that ends before it begins.
func TestExpiredIntermediateIssuesNothing(t *testing.T) {
	a, _, clk := newAuthority(t, "ec-p256")
	clk.Advance(a.Intermediate().NotAfter.Sub(clk.Now()) + time.Hour)
	_, err := a.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "late.internal"}})})
	if errs.KindOf(err) != errs.Unavailable || !strings.Contains(errs.DetailOf(err), "intermediate expired at") {
		t.Fatalf("sign after the intermediate expired: %v", err)
	}
}

func TestCRL(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "pkid.db")
	tc := testutil.CA(t, "ec-p256")
	open := func(clk ca.Clock) (*ca.Authority, *store.Bolt) {
		st, err := store.OpenBolt(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: map[string]*policies.Role{"default": defaultRole()}, Store: st, Clock: clk, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return a, st
	}
	ctx := context.Background()
	clk := ca.NewFakeClock(now)
	a, st := open(clk)
	pub := ca.NewCRLPublisher(a, time.Hour, quiet)
	short := issue(t, a, "short.internal", 30*time.Minute)
	long := issue(t, a, "long.internal", 5*time.Hour)
	a.Revoke(ctx, short.Record.Serial, "keyCompromise")
	a.Revoke(ctx, long.Record.Serial, "superseded")
	first, err := pub.Generate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(first.DER)
	if err != nil || rl.CheckSignatureFrom(tc.Intermediate) != nil {
		t.Fatalf("CRL does not verify: %v", err)
	}
	if len(rl.RevokedCertificateEntries) != 2 || !rl.NextUpdate.Equal(rl.ThisUpdate.Add(time.Hour)) {
		t.Fatalf("entries %d next %s", len(rl.RevokedCertificateEntries), rl.NextUpdate)
	}
	for _, e := range rl.RevokedCertificateEntries {
		want := map[string]int{short.Record.Serial: 1, long.Record.Serial: 4}[ca.SerialString(e.SerialNumber)]
		if e.ReasonCode != want {
			t.Fatalf("reason %d want %d", e.ReasonCode, want)
		}
	}
	if n := testutil.LintCRL(t, first.DER); n < 5 {
		t.Fatalf("only %d CRL lints applied", n)
	}
	// Across a close and reopen, and with a clock that went back, the
	// number still grows.
	st.Close()
	back := ca.NewFakeClock(now.Add(-time.Hour))
	a, st = open(back)
	defer st.Close()
	pub = ca.NewCRLPublisher(a, time.Hour, quiet)
	second, err := pub.Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	rl2, _ := x509.ParseRevocationList(second.DER)
	if rl2.Number.Cmp(rl.Number) <= 0 {
		t.Fatalf("CRL number went from %s to %s", rl.Number, rl2.Number)
	}
	// RFC 5280 §3.3: the expired entry stays on the first scheduled CRL
	// after its notAfter, then goes.
	back.Advance(3 * time.Hour) // now+2h: short expired at now+30m
	third, _ := pub.Generate(ctx, true)
	rl3, _ := x509.ParseRevocationList(third.DER)
	if len(rl3.RevokedCertificateEntries) != 2 {
		t.Fatalf("expired entry dropped before a scheduled CRL listed it after expiry: %d", len(rl3.RevokedCertificateEntries))
	}
	back.Advance(time.Minute)
	fourth, _ := pub.Generate(ctx, false)
	rl4, _ := x509.ParseRevocationList(fourth.DER)
	if len(rl4.RevokedCertificateEntries) != 1 || ca.SerialString(rl4.RevokedCertificateEntries[0].SerialNumber) != long.Record.Serial {
		t.Fatalf("after a scheduled CRL listed it, the expired entry should go: %d entries", len(rl4.RevokedCertificateEntries))
	}
	// A revocation just before notAfter that commits after a scheduled
	// CRL's read (played here with the clock: the scheduled CRL comes
	// first, the revocation is dated before it) is still listed next time.
	late, err := a.Sign(ctx, &ca.SignRequest{Role: "default", TTL: 30 * time.Minute, CSR: makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "late.internal"}})})
	if err != nil {
		t.Fatal(err) // not issue(): its key was revoked for keyCompromise above
	}
	back.Advance(40 * time.Minute)
	if _, err := pub.Generate(ctx, true); err != nil {
		t.Fatal(err)
	}
	back.Advance(-11 * time.Minute)
	if _, _, err := a.Revoke(ctx, late.Record.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	fifth, _ := pub.Generate(ctx, false)
	rl5, _ := x509.ParseRevocationList(fifth.DER)
	if !slices.ContainsFunc(rl5.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool { return ca.SerialString(e.SerialNumber) == late.Record.Serial }) {
		t.Fatal("a revocation committed after a scheduled CRL's read was dropped without ever being listed")
	}
}

func ocspRequest(t *testing.T, leaf, issuer *x509.Certificate) []byte {
	t.Helper()
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestOCSP(t *testing.T) {
	for _, kt := range []string{"ec-p256", "rsa-2048", "ed25519"} {
		t.Run(kt, func(t *testing.T) {
			a, _, _ := newAuthority(t, kt)
			ctx := context.Background()
			o, err := ca.NewOCSPResponder(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			inter := a.Intermediate()
			iss := issue(t, a, "o.internal", time.Hour)
			leaf := parsePEM(t, iss.PEM)
			check := func(want int) *ocsp.Response {
				t.Helper()
				resp, err := ocsp.ParseResponseForCert(o.Respond(ctx, ocspRequest(t, leaf, inter)), leaf, inter)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != want {
					t.Fatalf("status %d want %d", resp.Status, want)
				}
				return resp
			}
			check(ocsp.Good)
			if kt == "ed25519" {
				r := o.Responder()
				if r == inter || r.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning {
					t.Fatal("Ed25519 intermediate must answer through a delegated responder")
				}
				testutil.LintCertificate(t, r.Raw)
			}
			a.Revoke(ctx, iss.Record.Serial, "keyCompromise")
			r := check(ocsp.Revoked)
			if r.RevocationReason != ocsp.KeyCompromise {
				t.Fatalf("reason %d", r.RevocationReason)
			}
			// A serial this CA never issued is unknown.
			fake := *leaf
			fake.SerialNumber = fake.SerialNumber.Lsh(fake.SerialNumber, 1)
			resp, err := ocsp.ParseResponse(o.Respond(ctx, ocspRequest(t, &fake, inter)), inter)
			if err != nil || resp.Status != ocsp.Unknown {
				t.Fatalf("never-issued serial: %v %v", resp, err)
			}
			if got := o.Respond(ctx, []byte("garbage")); string(got) != string(ocsp.MalformedRequestErrorResponse) {
				t.Fatal("garbage did not get malformedRequest")
			}
		})
	}
}

// TestOCSPNeverOutlivesCertificate: an answer for a certificate that is
// still valid is good at most until its notAfter. certmagic (Caddy) neither
// staples nor acts on an answer whose nextUpdate is later, and pkid's
// certificates often live less than the hour an answer otherwise does.
func TestOCSPNeverOutlivesCertificate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		revoke  bool
		advance time.Duration // before asking
		// untilNotAfter: nextUpdate is the certificate's notAfter, else
		// thisUpdate + 1 h.
		untilNotAfter bool
	}{
		{"ok/long-lived: a full hour", 24 * time.Hour, false, 0, false},
		{"ok/expires within the hour: until notAfter", 10 * time.Minute, false, 0, true},
		{"ok/revoked, expires within the hour: until notAfter", 10 * time.Minute, true, 0, true},
		{"ok/30 s before notAfter: the cached answer", 10 * time.Minute, false, 9*time.Minute + 30*time.Second, true},
		{"ok/1 s after notAfter: a new answer, a full hour", 10 * time.Minute, false, 10*time.Minute + time.Second, false},
		{"ok/revoked and expired: a full hour", 10 * time.Minute, true, 11 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, clk := newAuthority(t, "ec-p256")
			ctx := context.Background()
			o, err := ca.NewOCSPResponder(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			inter := a.Intermediate()
			iss := issue(t, a, "o.internal", tc.ttl)
			leaf := parsePEM(t, iss.PEM)
			if tc.revoke {
				if _, _, err := a.Revoke(ctx, iss.Record.Serial, "superseded"); err != nil {
					t.Fatal(err)
				}
			}
			// The answer cached before the clock moves must not be served
			// past its nextUpdate either.
			o.Respond(ctx, ocspRequest(t, leaf, inter))
			clk.Advance(tc.advance)
			resp, err := ocsp.ParseResponseForCert(o.Respond(ctx, ocspRequest(t, leaf, inter)), leaf, inter)
			if err != nil {
				t.Fatal(err)
			}
			want := resp.ThisUpdate.Add(time.Hour)
			if tc.untilNotAfter {
				want = leaf.NotAfter
			}
			if !resp.NextUpdate.Equal(want) {
				t.Fatalf("thisUpdate %s nextUpdate %s, want %s (notAfter %s)", resp.ThisUpdate, resp.NextUpdate, want, leaf.NotAfter)
			}
			if !resp.NextUpdate.After(clk.Now()) {
				t.Fatalf("served an answer whose nextUpdate %s has passed (now %s)", resp.NextUpdate, clk.Now())
			}
			if leaf.NotAfter.After(clk.Now()) && resp.NextUpdate.After(leaf.NotAfter) {
				t.Fatalf("nextUpdate %s after the certificate's notAfter %s", resp.NextUpdate, leaf.NotAfter)
			}
		})
	}
}

func TestRenewRefusesACMECertificates(t *testing.T) {
	role := defaultRole()
	role.Renewal = policies.Renewal{Enabled: true, MaxAge: time.Hour}
	a, _, _ := newAuthority(t, "ec-p256", role)
	ctx := context.Background()
	iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", Via: "acme", CSR: makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "acme.internal"}})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Renew(ctx, parsePEM(t, iss.PEM), nil); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "through ACME") {
		t.Fatalf("got %v", err)
	}
	role.Renewal.Enabled = false
	iss, _ = a.Sign(ctx, &ca.SignRequest{Role: "default", CSR: makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "api.internal"}})})
	if _, err := a.Renew(ctx, parsePEM(t, iss.PEM), nil); errs.KindOf(err) != errs.Forbidden || !strings.Contains(errs.DetailOf(err), "does not allow renewal") {
		t.Fatalf("renewal disabled: %v", err)
	}
}

// TestOCSPAnswersCarryRenewedResponder: an answer cached just before the
// delegated responder is renewed is not served after it; the next answer
// is signed by the new responder. Before, a request that came between the
// clock passing the renewal time and the renewal itself cached an answer
// under the old responder for half an hour (it made the api test of the
// renewal flaky on CI).
func TestOCSPAnswersCarryRenewedResponder(t *testing.T) {
	a, _, clk := newAuthority(t, "ed25519")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := ca.NewOCSPResponder(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	inter := a.Intermediate()
	leaf := parsePEM(t, issue(t, a, "o.internal", 168*time.Hour).PEM)
	answeredBy := func() *x509.Certificate {
		t.Helper()
		resp, err := ocsp.ParseResponseForCert(o.Respond(ctx, ocspRequest(t, leaf, inter)), leaf, inter)
		if err != nil || resp.Certificate == nil {
			t.Fatalf("OCSP answer: %v %v", resp, err)
		}
		return resp.Certificate
	}
	first := answeredBy()
	clk.Advance(21 * 24 * time.Hour)
	if !answeredBy().Equal(first) { // re-signed and cached before the renewal ran
		t.Fatal("responder renewed before its loop ran")
	}
	go o.Run(ctx, time.Millisecond)
	for deadline := time.Now().Add(testutil.DutyWait); o.Responder().Equal(first); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("responder not renewed")
		}
	}
	if got := answeredBy(); !got.Equal(o.Responder()) {
		t.Fatalf("answer after the renewal carries responder %x, want %x", got.SerialNumber, o.Responder().SerialNumber)
	}
}

// TestRunPrunesCRLList: once a scheduled CRL made after an expired
// certificate's notAfter has listed it, the running publisher takes its
// entry out of the store's CRL list, so later CRLs do not read it; the
// record stays revoked and its key blocked.
func TestRunPrunesCRLList(t *testing.T) {
	a, st, clk := newAuthority(t, "ec-p256")
	ctx, cancel := context.WithCancel(context.Background())
	short := issue(t, a, "short.internal", 30*time.Minute)
	long := issue(t, a, "long.internal", 5*time.Hour)
	for serial, reason := range map[string]string{short.Record.Serial: "keyCompromise", long.Record.Serial: "superseded"} {
		if _, _, err := a.Revoke(ctx, serial, reason); err != nil {
			t.Fatal(err)
		}
	}
	pub := ca.NewCRLPublisher(a, time.Hour, quiet)
	pub.Tick = 10 * time.Millisecond
	done := make(chan struct{})
	go func() { pub.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(testutil.DutyWait)
	for { // Run's first CRL (scheduled) is stored at the clock's start
		if _, err := st.GetCRL(ctx, a.IssuerID()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no first CRL from Run")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Advance(2 * time.Hour) // past short's notAfter and half the validity
	deadline = time.Now().Add(5 * time.Second)
	for {
		list, err := st.ListRevoked(ctx, a.IssuerID())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Serial == long.Record.Serial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store's CRL list 5 s after the scheduled CRL: %+v, want only %s", list, long.Record.Serial)
		}
		time.Sleep(pub.Tick)
	}
	if rec, _ := st.GetCertificate(ctx, short.Record.Serial); rec.Status != store.StatusRevoked {
		t.Fatalf("pruned entry's record: %s", rec.Status)
	}
	if b, _ := st.KeyBlocked(ctx, short.Record.KeyHash); !b {
		t.Fatal("pruned keyCompromise entry's key unblocked")
	}
	cur, _ := pub.Current(ctx)
	rl, err := x509.ParseRevocationList(cur.DER)
	if err != nil || len(rl.RevokedCertificateEntries) != 2 {
		t.Fatalf("the scheduled CRL after short's expiry must still list both: %v", err)
	}
}
