package ca_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/errs"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store/storetest"
)

// TestNextIntermediate: the successor keeps the name constraints and CRL
// Distribution Point, takes the current key type unless told, is named
// for its generation, ends no later than the root, and lints clean; an
// Authority over it keeps the retired one for mTLS renewal and for the
// chains of its certificates, and refuses a "retired" intermediate of
// another root.
func TestNextIntermediate(t *testing.T) {
	h, err := ca.CreateHierarchy(ca.HierarchyOptions{Name: "T", KeyType: "ec-p384", Now: now, RootValidity: 6 * 365 * 24 * time.Hour,
		PermittedDomains: []string{"internal"}, PermittedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, RootCRLURL: "http://pki.internal/v1/ca/root.crl"})
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * 365 * 24 * time.Hour)
	next, key, err := ca.NextIntermediate(h.Root, h.RootKey, h.Intermediate, "", 0, later)
	if err != nil {
		t.Fatal(err)
	}
	if next.Subject.CommonName != "T Intermediate G2" || next.PublicKeyAlgorithm != x509.ECDSA || !next.PermittedDNSDomainsCritical ||
		!slices.Equal(next.PermittedDNSDomains, []string{"internal"}) || len(next.PermittedIPRanges) != 1 ||
		!slices.Equal(next.CRLDistributionPoints, h.Intermediate.CRLDistributionPoints) || !next.NotAfter.Equal(h.Root.NotAfter) ||
		next.CheckSignatureFrom(h.Root) != nil || !next.IsCA || !next.MaxPathLenZero {
		t.Fatalf("successor %q, constraints %v %v, CRL DP %v, until %s (root %s)", next.Subject.CommonName, next.PermittedDNSDomains, next.PermittedIPRanges, next.CRLDistributionPoints, next.NotAfter, h.Root.NotAfter)
	}
	testutil.LintCertificate(t, next.Raw)
	third, _, err := ca.NextIntermediate(h.Root, h.RootKey, next, "ed25519", time.Hour, later)
	if err != nil || third.Subject.CommonName != "T Intermediate G3" || third.PublicKeyAlgorithm != x509.Ed25519 || third.NotAfter.Sub(third.NotBefore) != time.Hour+time.Minute {
		t.Fatalf("third generation: %v", err)
	}
	if _, _, err := ca.NextIntermediate(h.Root, h.RootKey, next, "", 0, h.Root.NotAfter.Add(-time.Hour)); err == nil || !strings.Contains(err.Error(), "the root expires") {
		t.Fatalf("fail/a root about to expire: %v", err)
	}
	if _, _, err := ca.NextIntermediate(h.Root, h.RootKey, next, "", -time.Hour, later); err == nil || !strings.Contains(err.Error(), "expired when made") {
		t.Fatalf("fail/a negative validity: %v", err)
	}

	st := tempStore(t)
	ctx := context.Background()
	role := func() map[string]*policies.Role {
		r := defaultRole()
		r.Renewal = policies.Renewal{Enabled: true, MaxAge: 24 * time.Hour}
		return map[string]*policies.Role{"default": r}
	}
	deps := ca.Deps{Root: h.Root, Intermediate: h.Intermediate, Signer: h.IntermediateKey, Store: st, Roles: role(), Clock: ca.NewFakeClock(now)}
	before, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	csr := makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"svc.internal"}})
	iss, err := before.Sign(ctx, &ca.SignRequest{Role: "default", CSR: csr, Requester: "token:t"})
	if err != nil {
		t.Fatal(err)
	}
	old := parsePEM(t, iss.PEM)
	deps.Intermediate, deps.Signer, deps.Retired, deps.Clock = next, key, []*x509.Certificate{h.Intermediate}, ca.NewFakeClock(now.Add(time.Hour))
	deps.Roles = role()
	after, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	if string(after.IssuerPEM(iss.Record.Issuer)) != string(ca.PEMCert(h.Intermediate.Raw)) || string(after.IssuerPEM(after.IssuerID())) != string(after.IntermediatePEM()) {
		t.Fatal("IssuerPEM does not give each record its own intermediate")
	}
	ren, err := after.Renew(ctx, old, nil)
	if err != nil {
		t.Fatalf("ok/renewing a leaf of the retired intermediate: %v", err)
	}
	if c := parsePEM(t, ren.PEM); hex.EncodeToString(c.AuthorityKeyId) != after.IssuerID() {
		t.Fatalf("renewed under %x, want the new intermediate", c.AuthorityKeyId)
	}
	other, _ := ca.CreateHierarchy(ca.HierarchyOptions{KeyType: "ec-p256", Now: now})
	deps.Retired = []*x509.Certificate{other.Intermediate}
	if _, err := ca.New(deps); err == nil {
		t.Fatal("fail/a retired intermediate of another root was accepted")
	}
	deps.Retired = nil
	alone, _ := ca.New(deps)
	if _, err := alone.Authenticate(ctx, old); errs.KindOf(err) != errs.Unauthorized {
		t.Fatalf("fail/a leaf of an intermediate not listed as retired: %v", err)
	}
}

// TestCRLFollowsItsIssuer: a revocation through the current authority asks
// for a new CRL of the intermediate that issued the certificate only: the
// retired one's publisher, which follows the current authority, for a
// leaf of the retired one; the current one's for its own leaf.
func TestCRLFollowsItsIssuer(t *testing.T) {
	h, err := ca.CreateHierarchy(ca.HierarchyOptions{KeyType: "ec-p256", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	next, key, err := ca.NextIntermediate(h.Root, h.RootKey, h.Intermediate, "", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	st := tempStore(t)
	ctx, clk := context.Background(), ca.NewFakeClock(now)
	current, err := ca.New(ca.Deps{Root: h.Root, Intermediate: next, Signer: key, Store: st, Clock: clk, Roles: map[string]*policies.Role{"default": defaultRole()}, Retired: []*x509.Certificate{h.Intermediate}})
	if err != nil {
		t.Fatal(err)
	}
	retired, err := ca.New(ca.Deps{Root: h.Root, Intermediate: h.Intermediate, Signer: h.IntermediateKey, Store: st, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	pc := ca.NewCRLPublisher(current, time.Hour, slog.New(slog.DiscardHandler))
	pr := ca.NewCRLPublisher(retired, time.Hour, slog.New(slog.DiscardHandler))
	pr.Follow(current)

	old := storetest.Record("default")
	old.Issuer, old.NotBefore, old.NotAfter = retired.IssuerID(), now, now.Add(time.Hour)
	if err := st.InsertCertificate(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := current.Revoke(ctx, old.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	if !pr.Pending() || pc.Pending() {
		t.Fatalf("a retired leaf's revocation: retired CRL asked %v (want true), current CRL asked %v (want false)", pr.Pending(), pc.Pending())
	}
	iss, err := current.Sign(ctx, &ca.SignRequest{Role: "default", CSR: makeCSR(t, testutil.LeafKey(t, "ec-p256"), &x509.CertificateRequest{DNSNames: []string{"new.internal"}})})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := current.Revoke(ctx, iss.Record.Serial, "superseded"); err != nil {
		t.Fatal(err)
	}
	if !pc.Pending() {
		t.Fatal("the current intermediate's leaf's revocation did not ask for its CRL")
	}
}
