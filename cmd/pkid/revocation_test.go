package main_test

import (
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

func getCRL(t *testing.T, plain string) *x509.RevocationList {
	t.Helper()
	return testutil.FetchCRL(t, http.DefaultClient, "http://"+plain+"/crl")
}

// TestRevocationWithOpenSSL: OpenSSL as the independent checker of CRL and
// OCSP, and a SIGKILL between a revocation and the next CRL that must not
// lose the revocation nor roll the CRL number back.
func TestRevocationWithOpenSSL(t *testing.T) {
	openssl := needTool(t, "openssl")
	d, https, plain := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	admin := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--admin"))
	s := serve(t, d, https)
	root := filepath.Join(d, "certs", "root.crt")
	inter := filepath.Join(d, "certs", "intermediate.crt")
	env := []string{"PKID_HOME=" + t.TempDir()}
	tmp := t.TempDir()
	crt, key := filepath.Join(tmp, "leaf.crt"), filepath.Join(tmp, "leaf.key")
	mustPKID(t, env, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", admin, "--role", "default", "--cn", "ossl.internal", "--out", crt, "--key-out", key)
	leafOnly := filepath.Join(tmp, "leaf-only.crt")
	leaf, _ := ca.LoadCertificate(crt)
	os.WriteFile(leafOnly, ca.PEMCert(leaf.Raw), 0o644)

	ocspStatus := func() string {
		out, _ := exec.Command(openssl, "ocsp", "-issuer", inter, "-cert", leafOnly, "-url", "http://"+plain+"/ocsp", "-CAfile", root, "-no_nonce").CombinedOutput()
		return string(out)
	}
	if out := ocspStatus(); !strings.Contains(out, ": good") || !strings.Contains(out, "Response verify OK") {
		t.Fatalf("openssl ocsp before revocation: %s", out)
	}
	before := getCRL(t, plain)

	mustPKID(t, env, "cert", "revoke", "--ca-url", s.base, "--root", root, "--token", admin, "--reason", "keyCompromise", ca.SerialString(leaf.SerialNumber))
	s.stop(t, syscall.SIGKILL) // before the coalesced CRL is signed
	s2 := serve(t, d, https)
	_ = s2

	after := getCRL(t, plain)
	if after.Number.Cmp(before.Number) <= 0 {
		t.Fatalf("CRL number went from %s to %s across SIGKILL", before.Number, after.Number)
	}
	listed := false
	for _, e := range after.RevokedCertificateEntries {
		listed = listed || e.SerialNumber.Cmp(leaf.SerialNumber) == 0
	}
	if !listed {
		t.Fatal("revocation lost across SIGKILL: not on the CRL after restart")
	}
	crlDER := filepath.Join(tmp, "crl.der")
	b, _ := testutil.Fetch(t, http.DefaultClient, "http://"+plain+"/crl")
	os.WriteFile(crlDER, b, 0o644)
	if out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", crlDER, "-CAfile", inter, "-noout").CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl: %v %s", err, out)
	}
	if out := ocspStatus(); !strings.Contains(out, ": revoked") || !strings.Contains(out, "keyCompromise") {
		t.Fatalf("openssl ocsp after revocation: %s", out)
	}
	// openssl verify -crl_check: the intermediate's CRL rejects the leaf.
	crlPEM := filepath.Join(tmp, "crl.pem")
	os.WriteFile(crlPEM, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: b}), 0o644)
	out, err := exec.Command(openssl, "verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", root, "-untrusted", inter, leafOnly).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate revoked") {
		t.Fatalf("openssl verify -crl_check accepted a revoked leaf: %v %s", err, out)
	}
	// The bundle lets openssl check every level (-crl_check_all).
	bundle, _ := testutil.Fetch(t, http.DefaultClient, "http://"+plain+"/crl/bundle.pem")
	bundlePath := filepath.Join(tmp, "bundle.pem")
	os.WriteFile(bundlePath, bundle, 0o644)
	if out, err := exec.Command(openssl, "verify", "-crl_check_all", "-CRLfile", bundlePath, "-CAfile", root, "-untrusted", inter, leafOnly).CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate revoked") {
		t.Fatalf("openssl verify -crl_check_all: %v %s", err, out)
	}
	if out, err := exec.Command(openssl, "verify", "-crl_check_all", "-CRLfile", bundlePath, "-CAfile", root, inter).CombinedOutput(); err != nil {
		t.Fatalf("intermediate with the root CRL: %v %s", err, out)
	}
}

// TestRootCRLCommand: pkid ca root-crl re-signs with the root key,
// keeps earlier entries, and the number grows.
func TestRootCRLCommand(t *testing.T) {
	d, _, _ := initCA(t)
	read := func() *x509.RevocationList {
		raw, _ := os.ReadFile(filepath.Join(d, "certs", "root.crl"))
		b, _ := pem.Decode(raw)
		rl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		root, _ := ca.LoadCertificate(filepath.Join(d, "certs", "root.crt"))
		if err := rl.CheckSignatureFrom(root); err != nil {
			t.Fatal(err)
		}
		return rl
	}
	first := read()
	// A serial that is no intermediate of D goes on, with a warning that
	// names the ones D has: a mistyped serial leaves the one meant unrevoked.
	inter, _ := ca.LoadCertificate(filepath.Join(d, "certs", "intermediate.crt"))
	if r := pkid(t, nil, "ca", "root-crl", "--dir", d, "--revoke-intermediate", "0A:BC", "--reason", "keyCompromise"); r.code != 0 ||
		!strings.Contains(r.stderr, "warning: serial abc is not an intermediate in "+d) || !strings.Contains(r.stderr, ca.SerialString(inter.SerialNumber)+` "Test CA Intermediate"`) {
		t.Fatalf("root-crl revoking an unknown serial: %+v", r)
	}
	second := read()
	mustPKID(t, nil, "ca", "root-crl", "--dir", d, "--validity", "720h")
	third := read()
	if !(first.Number.Cmp(second.Number) < 0 && second.Number.Cmp(third.Number) < 0) {
		t.Fatalf("numbers %s %s %s", first.Number, second.Number, third.Number)
	}
	if len(third.RevokedCertificateEntries) != 1 || third.RevokedCertificateEntries[0].SerialNumber.Int64() != 0xabc || third.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("entries %+v", third.RevokedCertificateEntries)
	}
	if r := pkid(t, nil, "ca", "root-crl", "--dir", d, "--revoke-intermediate", "abc"); r.code != 1 || !strings.Contains(r.stderr, "already") {
		t.Fatalf("revoking twice: %+v", r)
	}
	// The previous root CRL was signed where the clock ran an hour ahead
	// (or this offline machine's is an hour behind): the new one still
	// gets a larger number, dated just after it, with a warning. serve
	// would refuse to load a smaller number, revocation and all.
	root, _ := ca.LoadCertificate(filepath.Join(d, "certs", "root.crt"))
	rootKey, err := ca.LoadKey(filepath.Join(d, "secrets", "root.key"), filepath.Join(d, "secrets", "root-password"))
	if err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().Add(time.Hour)
	der, err := ca.RootCRL(root, rootKey, third.RevokedCertificateEntries, ahead, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, "certs", "root.crl"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
	r := pkid(t, nil, "ca", "root-crl", "--dir", d, "--revoke-intermediate", "0d:ef")
	fourth := read()
	if r.code != 0 || !strings.Contains(r.stderr, "warning: this machine's clock") || fourth.Number.Cmp(big.NewInt(ahead.UnixNano())) <= 0 || len(fourth.RevokedCertificateEntries) != 2 {
		t.Fatalf("root-crl after a CRL from a clock ahead: number %s (previous %d), %d entries; %+v", fourth.Number, ahead.UnixNano(), len(fourth.RevokedCertificateEntries), r)
	}
	// The serial of D's intermediate: named, no warning.
	if r := pkid(t, nil, "ca", "root-crl", "--dir", d, "--revoke-intermediate", ca.SerialString(inter.SerialNumber)); r.code != 0 ||
		!strings.Contains(r.stderr, `revoking intermediate "Test CA Intermediate"`) || strings.Contains(r.stderr, "warning: serial") {
		t.Fatalf("root-crl revoking D's intermediate: %+v", r)
	}
}

// TestRevokeWithConfig: `pkid cert revoke --config` works through the admin
// socket while serve runs and on the store when it does not; the CRL signed
// at the next start lists both, and that start puts the offline ones on
// the audit log. `pkid cert list` shows them, filtered,
// either way, by name and by requester too.
func TestRevokeWithConfig(t *testing.T) {
	d, https, plain := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--name", "lister"))
	s := serve(t, d, https)
	var serials []string
	// All three for one key (newCSR's): a keyCompromise revocation of
	// one takes those of the others still valid with it.
	for _, n := range []string{"one.internal", "two.internal", "three.internal"} {
		csr, _ := newCSR(t, n)
		sn, err := s.sign(t.Context(), tok, csr)
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, sn)
	}
	mustPKID(t, nil, "cert", "revoke", "--config", cfg, "--reason", "superseded", strings.ToUpper(serials[0]))
	// pkid cert list, through the admin socket: the server's own
	// certificate and the two, oldest first, one revoked.
	list := func(where string, want map[string]string, args ...string) {
		t.Helper()
		out := mustPKID(t, nil, append([]string{"cert", "list", "--config", cfg}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(want)+1 || !strings.HasPrefix(lines[0], "SERIAL") {
			t.Fatalf("cert list %v %s: want %d rows:\n%s", args, where, len(want), out)
		}
		for sn, status := range want {
			if !strings.Contains(out, sn) || !regexp.MustCompile(sn+` +`+regexp.QuoteMeta(status)+` `).MatchString(out) {
				t.Fatalf("cert list %v %s: %s should read %q:\n%s", args, where, sn, status, out)
			}
		}
	}
	list("while serving", map[string]string{serials[0]: "revoked (superseded)"}, "--status", "revoked")
	list("while serving", map[string]string{serials[1]: "valid"}, "--role", "default", "--status", "valid", "--limit", "1")
	list("while serving", map[string]string{serials[0]: "revoked (superseded)"}, "--name", "ONE.internal.")
	list("while serving", map[string]string{serials[0]: "revoked (superseded)", serials[1]: "valid", serials[2]: "valid"}, "--requester", "token:lister")
	if out := mustPKID(t, nil, "cert", "list", "--config", cfg, "--requester", "token:lister"); !regexp.MustCompile(`(?m)^` + serials[1] + ` .* token:lister +two\.internal$`).MatchString(out) {
		t.Fatalf("cert list names the requester before the names:\n%s", out)
	}
	if out := mustPKID(t, nil, "cert", "list", "--config", cfg); strings.Count(out, "\n") != 5 || strings.Index(out, serials[0]) > strings.Index(out, serials[1]) {
		t.Fatalf("cert list: the server's certificate and the three, oldest first:\n%s", out)
	}
	s.stop(t, syscall.SIGTERM)
	if r := pkid(t, nil, "cert", "revoke", "--config", cfg, "--reason", "keyCompromise", serials[1]); r.code != 0 ||
		!strings.Contains(r.stderr, "revoked "+serials[2]+" too (keyCompromise): it certifies the same key") || strings.Contains(r.stderr, serials[0]) {
		t.Fatalf("revoke for keyCompromise offline: %+v", r)
	}
	if r := pkid(t, nil, "cert", "revoke", "--config", cfg, serials[1]); r.code != 1 || !strings.Contains(r.stderr, "already revoked") {
		t.Fatalf("revoke twice offline: %+v", r)
	}
	list("on the store", map[string]string{serials[0]: "revoked (superseded)", serials[1]: "revoked (keyCompromise)", serials[2]: "revoked (keyCompromise)"}, "--status", "revoked")
	list("on the store", map[string]string{serials[1]: "revoked (keyCompromise)"}, "--name", "Two.Internal", "--status", "revoked")
	list("on the store", map[string]string{}, "--name", "two.internal", "--status", "valid")
	list("on the store", map[string]string{serials[1]: "revoked (keyCompromise)"}, "--requester", "token:lister", "--name", "two.internal")
	if out := mustPKID(t, nil, "cert", "list", "--config", cfg, "--name", "two.internal"); !regexp.MustCompile(`(?m)^` + serials[1] + ` .* token:lister +two\.internal$`).MatchString(out) {
		t.Fatalf("cert list on the store names the requester:\n%s", out)
	}
	list("on the store", map[string]string{}, "--requester", "token:list")
	if r := pkid(t, nil, "cert", "list", "--config", cfg, "--status", "gone"); r.code != 2 || !strings.Contains(r.stderr, "want valid, revoked or expired") {
		t.Fatalf("fail/cert list --status gone: %+v", r)
	}
	s = serve(t, d, https)
	// The offline revocation (and the one it took with it) reaches serve's
	// audit log at this start.
	for _, sn := range []string{serials[1], serials[2]} {
		if !regexp.MustCompile(`"msg":"audit","offline_at":"[^"]+","event":"revoke","requester":"store",.*"serial":"` + sn + `","reason":"keyCompromise"`).MatchString(s.logs()) {
			t.Fatalf("no audit line at start for the offline revocation of %s:\n%s", sn, s.logs())
		}
	}
	rl := getCRL(t, plain)
	found := 0
	for _, e := range rl.RevokedCertificateEntries {
		for _, sn := range serials {
			if ca.SerialString(e.SerialNumber) == sn {
				found++
			}
		}
	}
	if found != 3 {
		t.Fatalf("CRL lists %d of the 3 revocations", found)
	}
}
