package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store"
	"pkid/store/storetest"
)

// copyStore is what a restore from a backup gives: the store as it stood
// when copied, opened on its own.
func copyStore(t *testing.T, st *store.Bolt) *store.Bolt {
	t.Helper()
	p := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Backup(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cp, err := store.OpenBolt(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Close() })
	return cp
}

func serials(recs []*store.CertRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Serial)
	}
	slices.Sort(out)
	return out
}

// TestReapplyCRL: a store restored from a copy made before some
// revocations has lost them; the CRL signed after them puts each back
// with its time and reason (keyCompromise revoking the key's other
// certificate and blocking the key, a lesser reason raised), lists the
// serial the copy never held on the CRL without making a record of it, and
// leaves the certificate never revoked valid. Applied again it changes nothing. A CRL that is not this CA's
// intermediate's (another CA's, the root's, a forged one, not a CRL) is
// refused and changes nothing.
func TestReapplyCRL(t *testing.T) {
	a, st, clk := newAuthority(t, "ec-p256")
	ctx := context.Background()
	leaked := freshKey(t)
	one := issueFor(t, a, "one.internal", time.Hour, leaked).Record.Serial
	sameKey := issueFor(t, a, "one-again.internal", time.Hour, leaked).Record.Serial
	two := issue(t, a, "two.internal", time.Hour).Record.Serial
	kept := issue(t, a, "kept.internal", time.Hour).Record.Serial
	early := issue(t, a, "early.internal", time.Hour).Record.Serial
	raised := issue(t, a, "raised.internal", time.Hour).Record.Serial
	for sn, reason := range map[string]string{early: "", raised: "superseded"} {
		if _, _, err := a.Revoke(ctx, sn, reason); err != nil {
			t.Fatal(err)
		}
	}
	restored := copyStore(t, st)

	clk.Advance(time.Minute)
	revokedAt := clk.Now().UTC()
	for sn, reason := range map[string]string{one: "keyCompromise", two: "superseded", raised: "keyCompromise"} {
		if _, _, err := a.Revoke(ctx, sn, reason); err != nil {
			t.Fatal(err)
		}
	}
	late := issue(t, a, "late.internal", time.Hour).Record.Serial
	if _, _, err := a.Revoke(ctx, late, "cessationOfOperation"); err != nil {
		t.Fatal(err)
	}
	crl, err := ca.NewCRLPublisher(a, 24*time.Hour, quiet).Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}

	tc := testutil.CA(t, "ec-p256")
	clk.Advance(time.Hour)
	b, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Roles: a.Roles(), Store: restored, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	// The loss this undoes: the restored store's CRL would list only the
	// revocation made before the copy.
	if rl := generate(t, b); len(rl.RevokedCertificateEntries) != 2 {
		t.Fatalf("the restored store lists %d revocations", len(rl.RevokedCertificateEntries))
	}
	got, err := b.ReapplyCRL(ctx, crl.DER)
	if err != nil {
		t.Fatal(err)
	}
	again := slices.Sorted(slices.Values(append(serials(got.Revoked), serials(got.SameKey)...)))
	want := []string{one, sameKey, two}
	slices.Sort(want)
	unrecorded := store.RevokedEntry{Serial: late, RevokedAt: revokedAt, Reason: "cessationOfOperation", NotAfter: tc.Intermediate.NotAfter}
	if !slices.Equal(again, want) || !slices.Equal(serials(got.Raised), []string{raised}) || !slices.Equal(got.Unrecorded, []store.RevokedEntry{unrecorded}) ||
		got.Entries != 6 || len(got.Revoked)+len(got.Raised)+got.Already+len(got.Unrecorded) != got.Entries || got.Issuer != b.IssuerID() || got.Number.String() != crl.Number {
		t.Fatalf("ok/reapply: revoked again %v (want %v), raised %v, already %d, unrecorded %v (want %+v), of %d entries, CRL %s of %s",
			again, want, serials(got.Raised), got.Already, got.Unrecorded, unrecorded, got.Entries, got.Number, got.Issuer)
	}
	// The key's two certificates: whichever entry comes first takes the
	// other with it, named as the one that took it.
	if len(got.SameKey) != 1 || got.SameKeyAs[got.SameKey[0].Serial] != map[string]string{one: sameKey, sameKey: one}[got.SameKey[0].Serial] {
		t.Fatalf("ok/same key: %v taken by %v", serials(got.SameKey), got.SameKeyAs)
	}
	for sn, reason := range map[string]string{one: "keyCompromise", sameKey: "keyCompromise", two: "superseded", raised: "keyCompromise", kept: "", early: "unspecified"} {
		rec, err := restored.GetCertificate(ctx, sn)
		if err != nil {
			t.Fatal(err)
		}
		if reason == "" {
			if rec.Status != store.StatusValid {
				t.Fatalf("ok/never revoked: %s is %s", sn, rec.Status)
			}
			continue
		}
		if rec.Status != store.StatusRevoked || rec.Reason != reason {
			t.Fatalf("ok/reapplied %s: %s (%s), want revoked (%s)", sn, rec.Status, rec.Reason, reason)
		}
		if (sn == one || sn == two) && !rec.RevokedAt.Equal(revokedAt) {
			t.Fatalf("ok/reapplied %s: revoked at %s, want the CRL's %s", sn, rec.RevokedAt, revokedAt)
		}
	}
	if blocked, err := b.KeyBlocked(ctx, leaked.Public()); err != nil || !blocked {
		t.Fatalf("ok/the leaked key is blocked again: %v %v", blocked, err)
	}
	if _, err := restored.GetCertificate(ctx, late); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ok/no record is made for the unrecorded one: %v", err)
	}
	rl := generate(t, b)
	if len(rl.RevokedCertificateEntries) != 6 || !slices.ContainsFunc(rl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
		return ca.SerialString(e.SerialNumber) == late && e.RevocationTime.Equal(revokedAt) && e.ReasonCode == ca.Reasons["cessationOfOperation"]
	}) {
		t.Fatalf("ok/the next CRL lists %d revocations, want the 6 (the unrecorded one too, with its time and reason)", len(rl.RevokedCertificateEntries))
	}
	if got, err := b.ReapplyCRL(ctx, crl.DER); err != nil || len(got.Revoked)+len(got.Raised)+len(got.SameKey)+len(got.Unrecorded) != 0 || got.Already != 6 {
		t.Fatalf("ok/applied twice changes nothing: %+v %v", got, err)
	}

	other, _, _ := newAuthority(t, "ec-p384")
	otherCRL, err := ca.NewCRLPublisher(other, time.Hour, quiet).Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	rootCRL, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, tc.Root, testutil.RootKey(t, "ec-p256"))
	if err != nil {
		t.Fatal(err)
	}
	forged := slices.Clone(crl.DER)
	forged[len(forged)-1] ^= 1 // the signature's last byte
	for _, c := range []struct {
		name string
		der  []byte
		kind errs.Kind
	}{
		{"fail/not a CRL", []byte("-----BEGIN X509 CRL-----"), errs.Malformed},
		{"fail/another CA's", otherCRL.DER, errs.Forbidden},
		{"fail/the root's", rootCRL, errs.Forbidden},
		{"fail/a signature that does not verify", forged, errs.Forbidden},
	} {
		if got, err := b.ReapplyCRL(ctx, c.der); errs.KindOf(err) != c.kind || got != nil {
			t.Fatalf("%s: %v (kind %s, want %s)", c.name, err, errs.KindOf(err), c.kind)
		}
	}
}

// generate signs a's next CRL and parses it.
func generate(t *testing.T, a *ca.Authority) *x509.RevocationList {
	t.Helper()
	cur, err := ca.NewCRLPublisher(a, 24*time.Hour, quiet).Generate(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(cur.DER)
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

// TestReapplyRetiredCRL: a CRL of a retired intermediate, for its own
// leaves, is reapplied by the authority that issues from its successor;
// without the retired one listed it is another CA's.
func TestReapplyRetiredCRL(t *testing.T) {
	h, err := ca.CreateHierarchy(ca.HierarchyOptions{KeyType: "ec-p256", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	next, key, err := ca.NextIntermediate(h.Root, h.RootKey, h.Intermediate, "", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := tempStore(t)
	deps := ca.Deps{Root: h.Root, Intermediate: h.Intermediate, Signer: h.IntermediateKey, Store: st, Roles: map[string]*policies.Role{"default": defaultRole()}, Clock: ca.NewFakeClock(now)}
	before, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	sn := issue(t, before, "old.internal", time.Hour).Record.Serial
	restored := copyStore(t, st)
	if _, _, err := before.Revoke(ctx, sn, "superseded"); err != nil {
		t.Fatal(err)
	}
	crl, err := ca.NewCRLPublisher(before, time.Hour, quiet).Generate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	deps.Intermediate, deps.Signer, deps.Store = next, key, restored
	alone, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alone.ReapplyCRL(ctx, crl.DER); errs.KindOf(err) != errs.Forbidden {
		t.Fatalf("fail/a retired intermediate's CRL, not listed as retired: %v", err)
	}
	deps.Retired = []*x509.Certificate{h.Intermediate}
	after, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	got, err := after.ReapplyCRL(ctx, crl.DER)
	if err != nil || !slices.Equal(serials(got.Revoked), []string{sn}) || got.Issuer == after.IssuerID() {
		t.Fatalf("ok/the retired intermediate's CRL: %+v %v", got, err)
	}
}

// TestReapplyManyEntries: a CRL of 72 entries, put back several at once
// (ReapplyRevocationList shares commits among them), is reported entry by
// entry as one at a time would: each entry once, in the CRL's order; each
// record revoked with the CRL's reason, even one that a keyCompromise
// entry before it would have taken with its key (the old one-at-a-time
// code made it keyCompromise); of a key's two certificates listed for
// keyCompromise, one revoked by its entry and the other with it. Applied
// again, every entry was already there.
func TestReapplyManyEntries(t *testing.T) {
	a, st, _ := newAuthority(t, "ec-p256")
	tc := testutil.CA(t, "ec-p256")
	ctx := context.Background()
	want := map[string]string{} // serial → reason the CRL lists
	var entries []x509.RevocationListEntry
	list := func(sn, reason string) {
		n, _ := new(big.Int).SetString(sn, 16)
		want[sn] = reason
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: now, ReasonCode: ca.Reasons[reason]})
	}
	insert := func(status, reason, keyHash string) string {
		r := storetest.Record("default")
		r.Issuer, r.NotAfter = a.IssuerID(), now.Add(time.Hour)
		if status == store.StatusRevoked {
			r.Status, r.RevokedAt, r.Reason = status, now.Add(-time.Minute), reason
		}
		if keyHash != "" {
			r.KeyHash = keyHash
		}
		if err := st.InsertCertificate(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.Serial
	}
	pairs := map[string]string{}
	for i := range 60 {
		switch i % 6 {
		case 0, 1:
			list(insert(store.StatusValid, "", ""), "superseded")
		case 2:
			list(insert(store.StatusRevoked, "superseded", ""), "keyCompromise")
		case 3:
			list(insert(store.StatusRevoked, "unspecified", ""), "unspecified")
		case 4:
			list(storetest.RandomSerial(), "cessationOfOperation")
		case 5:
			key := fmt.Sprintf("k-pair-%d", i)
			one, other := insert(store.StatusValid, "", key), insert(store.StatusValid, "", key)
			pairs[one], pairs[other] = other, one
			list(one, "keyCompromise")
			list(other, "keyCompromise")
		}
	}
	mrand.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	// A key's certificate revoked for keyCompromise, and after it in the
	// CRL its other one, which the CRL lists as superseded: that one was
	// revoked before the key was, and keeps its reason.
	compromised, superseded := insert(store.StatusValid, "", "k-lesser"), insert(store.StatusValid, "", "k-lesser")
	list(compromised, "keyCompromise")
	list(superseded, "superseded")
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(now.UnixNano()), ThisUpdate: now, NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries}, tc.Intermediate, tc.Signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.ReapplyCRL(ctx, der)
	if err != nil {
		t.Fatal(err)
	}
	if got.Entries != 72 || len(got.Revoked) != 32 || len(got.Raised) != 10 || len(got.SameKey) != 10 || len(got.Unrecorded) != 10 || got.Already != 20 {
		t.Fatalf("ok/counts: %d entries: %d revoked, %d raised, %d of the same key, %d unrecorded, %d already; want 72: 32, 10, 10, 10, 20",
			got.Entries, len(got.Revoked), len(got.Raised), len(got.SameKey), len(got.Unrecorded), got.Already)
	}
	var reported []string
	for _, r := range slices.Concat(got.Revoked, got.Raised, got.SameKey) {
		reported = append(reported, r.Serial)
	}
	for _, e := range got.Unrecorded {
		reported = append(reported, e.Serial)
	}
	if len(reported) != len(slices.Compact(slices.Sorted(slices.Values(reported)))) {
		t.Fatalf("ok/each entry once: %v", reported)
	}
	pos := map[string]int{}
	for i, e := range entries {
		pos[ca.SerialString(e.SerialNumber)] = i
	}
	if !slices.IsSortedFunc(got.Revoked, func(x, y *store.CertRecord) int { return pos[x.Serial] - pos[y.Serial] }) {
		t.Fatalf("ok/reported in the CRL's order: %v", serials(got.Revoked))
	}
	for _, r := range got.SameKey {
		if got.SameKeyAs[r.Serial] != pairs[r.Serial] || pos[pairs[r.Serial]] > pos[r.Serial] && !slices.ContainsFunc(got.Revoked, func(x *store.CertRecord) bool { return x.Serial == pairs[r.Serial] }) {
			t.Fatalf("ok/same key: %s taken by %q, want its pair %s", r.Serial, got.SameKeyAs[r.Serial], pairs[r.Serial])
		}
	}
	for sn, reason := range want {
		rec, err := st.GetCertificate(ctx, sn)
		if errors.Is(err, store.ErrNotFound) && reason == "cessationOfOperation" {
			continue
		}
		if err != nil || rec.Status != store.StatusRevoked || rec.Reason != reason {
			t.Fatalf("ok/%s: %+v %v, want revoked (%s)", sn, rec, err, reason)
		}
	}
	if rl := generate(t, a); len(rl.RevokedCertificateEntries) != 72 {
		t.Fatalf("ok/the next CRL lists %d, want 72", len(rl.RevokedCertificateEntries))
	}
	again, err := a.ReapplyCRL(ctx, der)
	if err != nil || again.Already != 72 || len(again.Revoked)+len(again.Raised)+len(again.SameKey)+len(again.Unrecorded) != 0 {
		t.Fatalf("ok/applied twice changes nothing: %+v %v", again, err)
	}

	// A store that fails stops the run with its error, and no worker is
	// left waiting.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReapplyCRL(ctx, der); err == nil || !strings.Contains(err.Error(), "reapply CRL") {
		t.Fatalf("fail/closed store: %v", err)
	}
}
