package main_test

import (
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ocsp"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestHSMIntermediate: a CA whose intermediate key is made and kept in a
// PKCS#11 token (SoftHSM, the real module, driven by the real binary).
// pkid init makes the key in the token and writes no key file; serve
// signs leaves, CRLs and OCSP answers there, and again after SIGKILL and
// a restart, and after the token went away and came back (with /healthz
// "degraded" meanwhile); rotate-intermediate makes the successor in the token and the
// retired one keeps signing its CRL from it. A PIN in the URI, a wrong
// PIN and a key URI already taken are refused with the reason.
func TestHSMIntermediate(t *testing.T) {
	h := testutil.SoftHSM(t) // SOFTHSM2_CONF reaches every pkid this test starts
	keyURI := h.KeyURI("pkid-intermediate", "01")
	d, https, plain := initCA(t, "--intermediate-key-uri", keyURI)
	cfgPath, root := filepath.Join(d, "pkid.yaml"), filepath.Join(d, "certs", "root.crt")
	if _, err := os.Stat(filepath.Join(d, "secrets", "intermediate.key")); !os.IsNotExist(err) {
		t.Fatalf("init wrote an intermediate key file: %v", err)
	}
	raw, _ := os.ReadFile(cfgPath)
	if !strings.Contains(string(raw), "intermediate_key: '"+keyURI+"', password_file: secrets/password}") {
		t.Fatalf("pkid.yaml does not name the token key:\n%s", raw)
	}
	if r := pkid(t, nil, "init", "--dir", filepath.Join(t.TempDir(), "again"), "--intermediate-key-uri", keyURI); r.code != 1 || !strings.Contains(r.stderr, "the token already holds a key with object=pkid-intermediate") {
		t.Fatalf("fail/init onto a key already in the token: exit %d %s", r.code, r.stderr)
	}
	if r := pkid(t, nil, "config", "check", "--config", cfgPath); r.code != 0 {
		t.Fatalf("ok/config check reaches the key in the token: %s", r.stderr)
	}

	s := serve(t, d, https)
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfgPath, "--role", "default", "--admin", "--name", "ops"))
	issue := func(s *server, cn string) *x509.Certificate {
		t.Helper()
		_, _, c := issueCert(t, s, root, tok, cn)
		return c
	}
	inter, _ := ca.LoadCertificate(filepath.Join(d, "certs", "intermediate.crt"))
	leaf := issue(s, "hsm.internal")
	if err := leaf.CheckSignatureFrom(inter); err != nil {
		t.Fatalf("the leaf signed in the token: %v", err)
	}
	testutil.LintCertificate(t, leaf.Raw)
	mustPKID(t, nil, "cert", "revoke", "--ca-url", s.base, "--root", root, "--token", tok, leaf.SerialNumber.Text(16), "--reason", "keyCompromise")
	oldID := hex.EncodeToString(inter.SubjectKeyId)
	awaitCRLListing(t, plain, inter, leaf)
	if o := ocspStatus(t, plain, leaf, inter); o.Status != ocsp.Revoked {
		t.Fatalf("the OCSP answer signed in the token: %d", o.Status)
	}

	s.stop(t, syscall.SIGKILL)
	s = serve(t, d, https)
	if again := issue(s, "after-kill.internal"); again.CheckSignatureFrom(inter) != nil {
		t.Fatal("after SIGKILL and a restart the token key does not sign")
	}

	// The token goes away under the running server (its store moved
	// aside, as an HSM restarting drops every session): issuance fails,
	// /healthz says why; once it is back, serve opens it again by itself.
	tokens := filepath.Join(filepath.Dir(h.Conf), "tokens")
	if err := os.Rename(tokens, tokens+".away"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "gone.crt")
	if r := pkid(t, nil, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", tok, "--role", "default", "--cn", "gone.internal", "--out", out, "--key-out", out+".key"); r.code != 1 {
		t.Fatalf("fail/issued with the token gone: %+v", r)
	}
	if hz := s.getText(t, "/healthz"); !strings.Contains(hz, `"status":"degraded"`) || !strings.Contains(hz, "the intermediate key's last signature") || !strings.Contains(hz, "CKR_") {
		t.Fatalf("/healthz with the token gone: %s", hz)
	}
	if err := os.Rename(tokens+".away", tokens); err != nil {
		t.Fatal(err)
	}
	await(t, "the token is back, and issuance still fails", func() bool {
		return pkid(t, nil, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", tok, "--role", "default", "--cn", "back.internal", "--out", out, "--key-out", out+".key").code == 0
	})
	if hz := s.getText(t, "/healthz"); !strings.Contains(hz, `"status":"ok"`) {
		t.Fatalf("/healthz once the token signs again: %s", hz)
	}
	s.stop(t, syscall.SIGTERM)

	if r := pkid(t, nil, "ca", "rotate-intermediate", "--dir", d); r.code != 2 || !strings.Contains(r.stderr, "name the new key's place there with --key-uri") {
		t.Fatalf("fail/rotation without --key-uri: exit %d %s", r.code, r.stderr)
	}
	nextURI := h.KeyURI("pkid-intermediate-g2", "02")
	newID := strings.TrimSpace(mustPKID(t, nil, "ca", "rotate-intermediate", "--dir", d, "--key-uri", nextURI))
	if b, err := os.ReadFile(filepath.Join(d, "secrets", "retired", oldID+".uri")); err != nil || strings.TrimSpace(string(b)) != keyURI {
		t.Fatalf("the retired key's URI: %q %v", b, err)
	}
	raw, _ = os.ReadFile(cfgPath)
	if !strings.Contains(string(raw), "intermediate_key: '"+nextURI+"'") {
		t.Fatalf("pkid.yaml does not name the new token key:\n%s", raw)
	}
	next, _ := ca.LoadCertificate(filepath.Join(d, "certs", "intermediate.crt"))
	s = serve(t, d, https)
	if fresh := issue(s, "g2.internal"); hex.EncodeToString(fresh.AuthorityKeyId) != newID || fresh.CheckSignatureFrom(next) != nil {
		t.Fatalf("issued by %x, want the new intermediate %s", fresh.AuthorityKeyId, newID)
	}
	awaitCRLListing(t, plain, inter, leaf) // the retired key still signs, in the token
	s.stop(t, syscall.SIGTERM)

	// Refusals, each naming what is wrong and never the PIN.
	wrong := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(wrong, []byte("0000\n"), 0o600)
	withKey := func(uri string) {
		y := strings.Replace(string(raw), nextURI, uri, 1)
		os.WriteFile(cfgPath, []byte(y), 0o644)
	}
	withKey(strings.Replace(nextURI, h.PinFile, wrong, 1))
	if r := pkid(t, nil, "serve", "--config", cfgPath); r.code != 1 || !strings.Contains(r.stderr, "CKR_PIN_INCORRECT") {
		t.Fatalf("fail/serve with a wrong PIN: exit %d %s", r.code, r.stderr)
	}
	withKey(strings.Replace(nextURI, "?pin-source="+h.PinFile, "?pin-value=4711", 1))
	if r := pkid(t, nil, "config", "check", "--config", cfgPath); r.code != 1 || !strings.Contains(r.stderr, "ca.intermediate_key: pin-value would keep the token's PIN in pkid.yaml") || strings.Contains(r.stderr, "4711") {
		t.Fatalf("fail/a PIN in pkid.yaml: exit %d %s", r.code, r.stderr)
	}
	withKey(h.KeyURI("pkid-intermediate", "01")) // the retired key: not the certificate's
	if r := pkid(t, nil, "config", "check", "--config", cfgPath); r.code != 1 || !strings.Contains(r.stderr, "is not the intermediate certificate's") {
		t.Fatalf("fail/a token key that is not the intermediate's: exit %d %s", r.code, r.stderr)
	}
}
