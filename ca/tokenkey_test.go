package ca_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"pkid/ca"
	"pkid/internal/testutil"
	"pkid/policies"
)

// TestTokenKey: an intermediate whose key is made and kept in a PKCS#11
// token (SoftHSM, the real module) signs its own certificate request,
// leaves, CRLs and OCSP responses from inside the token; making a key
// where one exists, an Ed25519 key, a PIN in the URI and a missing or
// wrong PIN are refused with the reason.
func TestTokenKey(t *testing.T) {
	ctx := context.Background()
	h := testutil.SoftHSM(t)
	keyURI := h.KeyURI("pkid-intermediate", "01")
	// First: once this process has logged in to the token, PKCS#11 keeps
	// it logged in, and a wrong PIN goes unnoticed.
	wrongPIN := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(wrongPIN, []byte("0000\n"), 0o600)
	if _, err := ca.CreateTokenKey(ctx, strings.Replace(keyURI, h.PinFile, wrongPIN, 1), "ec-p256"); err == nil || !strings.Contains(err.Error(), "CKR_PIN_INCORRECT") {
		t.Fatalf("fail/wrong PIN: %v", err)
	}
	made, err := ca.CreateTokenKey(ctx, keyURI, "ec-p256")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, uri, keyType, want string
	}{
		{"fail/key already there", keyURI, "ec-p256", "the token already holds a key with"},
		{"fail/same label, other id", h.KeyURI("pkid-intermediate", "02"), "ec-p384", "the token already holds a key with"},
		{"fail/ed25519", h.KeyURI("ed", "03"), "ed25519", "has no Ed25519"},
		{"fail/PIN in the URI", strings.Replace(keyURI, "?pin-source="+h.PinFile, "?pin-value=4711", 1), "ec-p256", "write it to a file (mode 0600) and name that with pin-source"},
		{"fail/no PIN file", strings.Replace(h.KeyURI("x", "04"), h.PinFile, h.PinFile+".gone", 1), "ec-p256", "read the token PIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ca.CreateTokenKey(ctx, tc.uri, tc.keyType)
			if err == nil {
				k.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "4711") {
				t.Fatalf("got %v, want an error saying %q (and never the PIN)", err, tc.want)
			}
		})
	}
	if _, err := ca.OpenTokenKey(ctx, h.KeyURI("absent", "09")); err == nil || !strings.Contains(err.Error(), "find the key") {
		t.Fatalf("fail/open a key the token lacks: %v", err)
	}

	key, err := ca.OpenTokenKey(ctx, keyURI)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(made.Public()) {
		t.Fatal("the key opened is not the key made")
	}
	made.Close() // key's is now the one session with the module
	hier, err := ca.CreateHierarchy(ca.HierarchyOptions{Name: "HSM", KeyType: "ec-p256", Now: now, IntermediateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if !hier.Intermediate.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Fatal("the intermediate certifies another key than the token's")
	}
	testutil.LintCertificate(t, hier.Intermediate.Raw)
	a, err := ca.New(ca.Deps{Root: hier.Root, Intermediate: hier.Intermediate, Signer: key, Roles: map[string]*policies.Role{"default": defaultRole()},
		Store: tempStore(t), Clock: ca.NewFakeClock(now), PointersURL: "http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	leafKey := testutil.LeafKey(t, "ec-p256")
	iss, err := a.Sign(ctx, &ca.SignRequest{Role: "default", Requester: "token:t", CSR: makeCSR(t, leafKey, &x509.CertificateRequest{DNSNames: []string{"hsm.internal"}})})
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEM(t, iss.PEM)
	roots := x509.NewCertPool()
	roots.AddCert(hier.Root)
	inters := x509.NewCertPool()
	inters.AddCert(hier.Intermediate)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now, DNSName: "hsm.internal"}); err != nil {
		t.Fatalf("the leaf signed in the token does not verify: %v", err)
	}
	testutil.LintCertificate(t, leaf.Raw)
	if _, _, err := a.Revoke(ctx, iss.Record.Serial, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	st, err := ca.NewCRLPublisher(a, 24*time.Hour, quiet).Generate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(st.DER)
	if err != nil || crl.CheckSignatureFrom(hier.Intermediate) != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("the CRL signed in the token: %v", err)
	}
	testutil.LintCRL(t, st.DER)
	o, err := ca.NewOCSPResponder(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := ocsp.CreateRequest(leaf, hier.Intermediate, nil)
	resp, err := ocsp.ParseResponseForCert(o.Respond(ctx, req), leaf, hier.Intermediate)
	if err != nil || resp.Status != ocsp.Revoked {
		t.Fatalf("the OCSP answer signed in the token: %v %+v", err, resp)
	}

	// The token goes away (its store moved aside, as an HSM restarting
	// drops every session): signing fails and the Authority says when
	// and why. Once it is back, the next signature opens it again.
	freshKey, err := ca.GenerateKey("ec-p256") // leafKey (a fixture) is blocked now
	if err != nil {
		t.Fatal(err)
	}
	sign := func() error {
		_, err := a.Sign(ctx, &ca.SignRequest{Role: "default", Requester: "token:t", CSR: makeCSR(t, freshKey, &x509.CertificateRequest{DNSNames: []string{"hsm.internal"}})})
		return err
	}
	tokens := filepath.Join(filepath.Dir(h.Conf), "tokens")
	if err := os.Rename(tokens, tokens+".away"); err != nil {
		t.Fatal(err)
	}
	if err := sign(); err == nil || !strings.Contains(err.Error(), "CKR_") {
		t.Fatalf("fail/signed with the token gone: %v", err)
	}
	if at, err := a.SignFailure(); err == nil || !at.Equal(now) {
		t.Fatalf("fail/the failure is not reported: %s %v", at, err)
	}
	if err := os.Rename(tokens+".away", tokens); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(testutil.DutyWait); sign() != nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the token is back, and signing still fails: %v", sign())
		}
	}
	if _, err := a.SignFailure(); err != nil {
		t.Fatalf("ok/signing works again, and the failure is still reported: %v", err)
	}
}
