package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

func TestInit(t *testing.T) {
	openssl := needTool(t, "openssl")
	d, _, plain := initCA(t)
	for _, f := range []string{"pkid.yaml", "certs/root.crt", "certs/intermediate.crt", "certs/root.crl", "secrets/root.key", "secrets/intermediate.key", "secrets/password", "secrets/root-password"} {
		if _, err := os.Stat(filepath.Join(d, f)); err != nil {
			t.Fatalf("init did not write %s", f)
		}
	}
	for _, f := range []string{"secrets/root.key", "secrets/intermediate.key", "secrets/password", "secrets/root-password"} {
		fi, _ := os.Stat(filepath.Join(d, f))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o", f, fi.Mode().Perm())
		}
		if strings.HasSuffix(f, ".key") {
			b, _ := os.ReadFile(filepath.Join(d, f))
			if !strings.Contains(string(b), "BEGIN ENCRYPTED PRIVATE KEY") {
				t.Errorf("%s is not encrypted PKCS#8", f)
			}
		}
	}
	rp, _ := os.ReadFile(filepath.Join(d, "secrets/root-password"))
	ip, _ := os.ReadFile(filepath.Join(d, "secrets/password"))
	if string(rp) == string(ip) {
		t.Error("root and intermediate share a passphrase")
	}
	if out, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(d, "certs/root.crt"), filepath.Join(d, "certs/intermediate.crt")).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v %s", err, out)
	}
	if out, err := exec.Command(openssl, "crl", "-in", filepath.Join(d, "certs/root.crl"), "-CAfile", filepath.Join(d, "certs/root.crt"), "-noout").CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl: %v %s", err, out)
	}
	// The intermediate's CRL DP is where serve publishes the root's CRL:
	// http://<http-listen> unless --pointers-url says otherwise.
	inter, err := ca.LoadCertificate(filepath.Join(d, "certs/intermediate.crt"))
	if err != nil || !slices.Equal(inter.CRLDistributionPoints, []string{"http://" + plain + "/v1/ca/root.crl"}) {
		t.Fatalf("intermediate CRL DP %v (%v), want http://%s/v1/ca/root.crl", inter.CRLDistributionPoints, err, plain)
	}
	d2 := filepath.Join(t.TempDir(), "ca")
	mustPKID(t, nil, "init", "--dir", d2, "--pointers-url", "http://pki.internal/")
	if inter, err := ca.LoadCertificate(filepath.Join(d2, "certs/intermediate.crt")); err != nil || !slices.Equal(inter.CRLDistributionPoints, []string{"http://pki.internal/v1/ca/root.crl"}) {
		t.Fatalf("--pointers-url: intermediate CRL DP %v (%v)", inter.CRLDistributionPoints, err)
	}
	r := pkid(t, nil, "init", "--dir", d)
	if r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("overwrite without --force: %+v", r)
	}
	// --force makes a new hierarchy and keeps the store: what was issued
	// or granted before stays listed (and revocable).
	mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default", "--name", "before-force")
	oldRoot, _ := os.ReadFile(filepath.Join(d, "certs/root.crt"))
	mustPKID(t, nil, "init", "--dir", d, "--force")
	if newRoot, _ := os.ReadFile(filepath.Join(d, "certs/root.crt")); string(newRoot) == string(oldRoot) {
		t.Fatal("init --force kept the old root")
	}
	if list := mustPKID(t, nil, "token", "list", "--config", filepath.Join(d, "pkid.yaml")); !strings.Contains(list, "before-force") {
		t.Fatalf("init --force lost the store: %s", list)
	}
	// Listed oldest first, with serve stopped as through its socket (the
	// store keeps tokens in the order of their random ids).
	for i := range 4 {
		mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default", "--name", fmt.Sprintf("order-%d", i))
	}
	list := mustPKID(t, nil, "token", "list", "--config", filepath.Join(d, "pkid.yaml"))
	var at []int
	for _, name := range []string{"before-force", "order-0", "order-1", "order-2", "order-3"} {
		at = append(at, strings.Index(list, name))
	}
	if slices.Contains(at, -1) || !slices.IsSorted(at) {
		t.Fatalf("offline token list not oldest first:\n%s", list)
	}
	// With no serve running, token revoke opens the store itself.
	tokID, _, _ := strings.Cut(strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default", "--name", "offline")), ".")
	mustPKID(t, nil, "token", "revoke", "--config", filepath.Join(d, "pkid.yaml"), tokID)
	if list := mustPKID(t, nil, "token", "list", "--config", filepath.Join(d, "pkid.yaml")); strings.Contains(list, "offline") {
		t.Fatalf("revoked token still listed: %s", list)
	}
	if r := pkid(t, nil, "token", "revoke", "--config", filepath.Join(d, "pkid.yaml"), tokID); r.code != 1 || !strings.Contains(r.stderr, "no token with id "+tokID) {
		t.Fatalf("revoke twice, offline: %+v", r)
	}
	// A --force that cannot write its files (none may pass 256 bytes:
	// RLIMIT_FSIZE, as a full disk) changes nothing. Before, the generated
	// passphrases went first, and the old keys were left locked behind
	// new passphrases.
	caFiles := []string{"pkid.yaml", "certs/root.crt", "certs/intermediate.crt", "certs/root.crl", "secrets/root.key", "secrets/intermediate.key", "secrets/password", "secrets/root-password"}
	snapshot := func() map[string]string {
		m := map[string]string{}
		for _, f := range caFiles {
			b, _ := os.ReadFile(filepath.Join(d, f))
			m[f] = string(b)
		}
		return m
	}
	before := snapshot()
	lift := testutil.LimitFileSize(t, 256)
	r = pkid(t, nil, "init", "--dir", d, "--force")
	lift()
	if r.code != 1 || !strings.Contains(r.stderr, "file too large") {
		t.Fatalf("init --force on a full disk: %+v", r)
	}
	if after := snapshot(); !reflect.DeepEqual(after, before) {
		for _, f := range caFiles {
			if after[f] != before[f] {
				t.Errorf("%s changed by a failed init --force", f)
			}
		}
	}
	if r := pkid(t, nil, "init"); r.code != 2 {
		t.Fatalf("init without --dir: exit %d", r.code)
	}
	for _, bad := range [][]string{
		{"--password-file", filepath.Join(d, "secrets/password")},
		{"--permitted-ip", "10.0.0.0/33"},
		{"--ip", "localhost"},
	} {
		if r := pkid(t, nil, append([]string{"init", "--dir", t.TempDir()}, bad...)...); r.code != 2 || !strings.Contains(r.stderr, strings.TrimPrefix(bad[0], "--")) {
			t.Fatalf("init %v: %+v", bad, r)
		}
	}
	// Name constraints given to init are on the intermediate (and the
	// server's names inside them: TestNameConstraints).
	nc := filepath.Join(t.TempDir(), "ca")
	mustPKID(t, nil, "init", "--dir", nc, "--permitted-domain", "internal", "--permitted-ip", "10.0.0.0/8", "--dns", "ca.internal", "--ip", "10.0.0.1")
	if inter, _ := ca.LoadCertificate(filepath.Join(nc, "certs/intermediate.crt")); len(inter.PermittedDNSDomains) != 1 || inter.PermittedDNSDomains[0] != "internal" || len(inter.PermittedIPRanges) != 1 || inter.PermittedIPRanges[0].String() != "10.0.0.0/8" || !inter.PermittedDNSDomainsCritical {
		t.Fatalf("intermediate's name constraints: %v %v", inter.PermittedDNSDomains, inter.PermittedIPRanges)
	}
	if r := pkid(t, nil, "init", "--dir", t.TempDir(), "--key-type", "dsa"); r.code != 2 || !strings.Contains(r.stderr, `--key-type "dsa": want one of`) {
		t.Fatalf("bad key type: %+v", r)
	}
	// Flags that would make a pkid.yaml serve refuses are refused before
	// anything is written.
	for _, flags := range [][]string{{"--listen", "nowhere"}, {"--dns", "bad_name"}, {"--external-url", "http://ca.internal"}} {
		empty := filepath.Join(t.TempDir(), "ca")
		r := pkid(t, nil, append([]string{"init", "--dir", empty}, flags...)...)
		if _, err := os.Stat(empty); r.code != 2 || !strings.Contains(r.stderr, "invalid config") || err == nil {
			t.Fatalf("init %v: exit %d, %q, directory made: %v", flags, r.code, r.stderr, err == nil)
		}
	}
	if r := pkid(t, nil, "config", "check", "--config", filepath.Join(d, "pkid.yaml")); r.code != 0 {
		t.Fatalf("config check: %+v", r)
	}
	// A role's template is one of the files config check looks at: it
	// must exist and parse, as serve would require at start.
	y, _ := os.ReadFile(filepath.Join(d, "pkid.yaml"))
	os.WriteFile(filepath.Join(d, "pkid.yaml"), []byte(strings.TrimRight(string(y), "\n")+"\n  tpl:\n    allowed_domains: [internal]\n    allow_subdomains: true\n    default_ttl: 1h\n    max_ttl: 2h\n    key_types: [ec-p256]\n    ext_key_usage: [server_auth]\n    template: tpl.json\n"), 0o600)
	os.WriteFile(filepath.Join(d, "tpl.json"), []byte(`{"subject": {{ .Subject `), 0o600)
	if r := pkid(t, nil, "config", "check", "--config", filepath.Join(d, "pkid.yaml")); r.code != 1 || !strings.Contains(r.stderr, "tpl.json") || !strings.Contains(r.stderr, "template of role tpl") {
		t.Fatalf("fail/template that does not parse: %+v", r)
	}
	os.Remove(filepath.Join(d, "tpl.json"))
	if r := pkid(t, nil, "config", "check", "--config", filepath.Join(d, "pkid.yaml")); r.code != 1 || !strings.Contains(r.stderr, "template of role tpl") {
		t.Fatalf("fail/missing template: %+v", r)
	}
	os.WriteFile(filepath.Join(d, "tpl.json"), []byte(`{"subject": {{ toJson .Subject }}, "sans": {{ toJson .SANs }}}`), 0o600)
	if r := pkid(t, nil, "config", "check", "--config", filepath.Join(d, "pkid.yaml")); r.code != 0 {
		t.Fatalf("ok/template: %+v", r)
	}
}

// TestPointersURLEditedWarns: the intermediate's CRL DP is fixed at init;
// once pointers_url is edited away from it, serve says so at start and
// /healthz keeps saying so, naming both addresses.
func TestPointersURLEditedWarns(t *testing.T) {
	d, https, plain := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := "pointers_url: http://" + plain + "\n"
	if !strings.Contains(string(raw), old) {
		t.Fatalf("pkid.yaml has no line %q", old)
	}
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), old, "pointers_url: http://pki.internal\n", 1)), 0o644)
	s := serve(t, d, https)
	resp, err := s.client.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct{ Warnings []string }
	json.NewDecoder(resp.Body).Decode(&h)
	want := "the intermediate's CRL distribution point is http://" + plain + "/v1/ca/root.crl, not http://pki.internal/v1/ca/root.crl"
	if len(h.Warnings) != 1 || !strings.HasPrefix(h.Warnings[0], want) || !strings.Contains(s.logs(), want) {
		t.Fatalf("/healthz warnings %q, want one starting %q; log:\n%s", h.Warnings, want, s.logs())
	}
}

func TestInitKeyTypesAndPasswordFiles(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	rpw := filepath.Join(t.TempDir(), "rpw")
	os.WriteFile(pw, []byte("intermediate-pass\n"), 0o600)
	os.WriteFile(rpw, []byte("root-passphrase\n"), 0o600)
	for _, kt := range []string{"ed25519", "ec-p384", "rsa-2048"} {
		d := filepath.Join(t.TempDir(), kt)
		r := pkid(t, nil, "init", "--dir", d, "--key-type", kt, "--password-file", pw, "--root-password-file", rpw, "--permitted-domain", "internal", "--dns", "ca.internal")
		if r.code != 0 {
			t.Fatalf("%s: %+v", kt, r)
		}
		out := r.stdout
		root, err := ca.LoadCertificate(filepath.Join(d, "certs/root.crt"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(root.Raw)
		if !strings.Contains(out, hex.EncodeToString(sum[:])) {
			t.Fatalf("%s: fingerprint not printed: %s", kt, out)
		}
		if _, err := os.Stat(filepath.Join(d, "secrets/password")); err == nil {
			t.Fatalf("%s: generated a password despite --password-file", kt)
		}
		if _, err := ca.LoadKey(filepath.Join(d, "secrets/intermediate.key"), pw); err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		if strings.Contains(r.stderr, "warning") {
			t.Fatalf("%s: warnings for 0600 files: %s", kt, r.stderr)
		}
		// Ed25519 is the one key type browsers refuse: init says so.
		if note := strings.Contains(r.stderr, "NSS (Firefox, and Chromium on Linux) cannot even import such a root"); note != (kt == "ed25519") {
			t.Fatalf("%s: browser note %v: %s", kt, note, r.stderr)
		}
		inter, _ := ca.LoadCertificate(filepath.Join(d, "certs/intermediate.crt"))
		if len(inter.PermittedDNSDomains) != 1 || !inter.MaxPathLenZero {
			t.Fatalf("%s: intermediate constraints missing", kt)
		}
	}
	// Passphrase files others may read are named, each with its mode.
	os.Chmod(pw, 0o640)
	os.Chmod(rpw, 0o644)
	r := pkid(t, nil, "init", "--dir", filepath.Join(t.TempDir(), "loose"), "--password-file", pw, "--root-password-file", rpw)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: "+rpw+" is readable by others than its owner (mode 0644)") || !strings.Contains(r.stderr, "warning: "+pw+" is readable by others than its owner (mode 0640)") {
		t.Fatalf("init with loose passphrase files: %+v", r)
	}
}

// TestUserFlow drives the binary as a user would: init, serve, token
// create through the admin socket, bootstrap by fingerprint, sign, issue,
// revoke; then checks the leaf with openssl.
func TestUserFlow(t *testing.T) {
	openssl := needTool(t, "openssl")
	d, https, _ := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	// While serve is not running, token create opens the store directly.
	direct := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--name", "offline"))
	if strings.Count(direct, ".") != 1 {
		t.Fatalf("token %q", direct)
	}
	s := serve(t, d, https)
	// While it runs, the same command goes through the admin socket.
	r := pkid(t, nil, "token", "create", "--config", cfg, "--role", "default", "--admin", "--name", "ops")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("token create while serving: %+v", r)
	}
	admin := strings.TrimSpace(r.stdout)
	if fi, err := os.Stat(filepath.Join(d, "pkid.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v", err)
	}
	list := mustPKID(t, nil, "token", "list", "--config", cfg)
	if !strings.Contains(list, "offline") || !strings.Contains(list, "ops") || strings.Contains(list, strings.Split(admin, ".")[1]) {
		t.Fatalf("token list: %s", list)
	}
	// Who made each: the store itself with serve stopped, the socket's
	// operator while it runs.
	for name, by := range map[string]string{"offline": "store", "ops": "admin-socket"} {
		if !regexp.MustCompile(`(?m)^\S+ +` + name + ` .* ` + by + `$`).MatchString(list) {
			t.Fatalf("token list: %s not created by %s:\n%s", name, by, list)
		}
	}
	// An admin token that mints one over the API: revoking it names what
	// it made, which its revocation leaves working.
	leaker := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--admin", "--name", "leaker"))
	req, _ := http.NewRequest("POST", s.base+"/v1/tokens", strings.NewReader(`{"name":"minted","roles":["default"]}`))
	req.Header.Set("Authorization", "Bearer "+leaker)
	resp, err := s.client.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("token by an admin token: %v %v", resp, err)
	}
	var minted struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&minted)
	resp.Body.Close()
	leakerID := strings.Split(leaker, ".")[0]
	if r := pkid(t, nil, "token", "revoke", "--config", cfg, leakerID); r.code != 0 || !strings.Contains(r.stderr, "note: token "+minted.ID+" (minted) was made by it and still works") {
		t.Fatalf("token revoke of an admin token that made one: %+v", r)
	}
	if r := pkid(t, nil, "token", "revoke", "--config", cfg, minted.ID); r.code != 0 || strings.Contains(r.stderr, "note:") {
		t.Fatalf("token revoke of one that made none: %+v", r)
	}

	home := t.TempDir()
	env := []string{"PKID_HOME=" + home}
	root, _ := ca.LoadCertificate(filepath.Join(d, "certs/root.crt"))
	sum := sha256.Sum256(root.Raw)
	fp := strings.ToUpper(hex.EncodeToString(sum[:]))
	if r := pkid(t, env, "ca", "bootstrap", "--ca-url", s.base, "--fingerprint", strings.Repeat("0", 64)); r.code != 1 {
		t.Fatalf("bootstrap with a wrong fingerprint: %+v", r)
	}
	if r := pkid(t, env, "ca", "bootstrap", "--ca-url", s.base, "--fingerprint", "abcd"); r.code != 2 || !strings.Contains(r.stderr, "64 digits") {
		t.Fatalf("bootstrap with a short fingerprint: %+v", r)
	}
	// A server in the middle can serve the real (public) root bundle, but
	// its TLS certificate does not chain to that root: refused, nothing
	// saved.
	mitm := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile(filepath.Join(d, "certs/root.crt"))
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		w.Write(b)
	}))
	defer mitm.Close()
	if r := pkid(t, env, "ca", "bootstrap", "--ca-url", mitm.URL, "--fingerprint", fp); r.code != 1 || !strings.Contains(r.stderr, "does not chain to the fingerprinted root") {
		t.Fatalf("bootstrap through a server in the middle: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(home, "roots.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("roots.pem written after a refused bootstrap: %v", err)
	}
	mustPKID(t, env, "ca", "bootstrap", "--ca-url", s.base, "--fingerprint", fp[:2]+":"+fp[2:])
	if b, _ := os.ReadFile(filepath.Join(home, "roots.pem")); strings.Count(string(b), "BEGIN CERTIFICATE") != 1 {
		t.Fatal("bootstrap did not save exactly the root")
	}

	csr, _ := newCSR(t, "cli.internal")
	csrFile := filepath.Join(t.TempDir(), "c.csr")
	os.WriteFile(csrFile, []byte(csr), 0o644)
	out := filepath.Join(t.TempDir(), "cli.crt")
	mustPKID(t, env, "cert", "sign", "--ca-url", s.base, "--token", direct, "--role", "default", "--csr", csrFile, "--ttl", "1h", "--out", out)
	if o, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(home, "roots.pem"), "-untrusted", out, out).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v %s", err, o)
	}
	// A DER CSR (openssl req -outform DER) is taken as well.
	blk, _ := pem.Decode([]byte(csr))
	derFile := filepath.Join(t.TempDir(), "c.der")
	os.WriteFile(derFile, blk.Bytes, 0o644)
	mustPKID(t, env, "cert", "sign", "--ca-url", s.base, "--token", direct, "--role", "default", "--csr", derFile, "--ttl", "1h", "--out", out+".der-csr")
	if o, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(home, "roots.pem"), "-untrusted", out+".der-csr", out+".der-csr").CombinedOutput(); err != nil {
		t.Fatalf("openssl verify (DER CSR): %v %s", err, o)
	}
	crt, key := filepath.Join(t.TempDir(), "i.crt"), filepath.Join(t.TempDir(), "i.key")
	if r := pkid(t, env, "cert", "issue", "--ca-url", s.base, "--token", direct, "--role", "default", "--cn", "gen.internal", "--san", "127.0.0.3", "--out", crt, "--key-out", key); r.code != 0 || strings.Contains(r.stderr, "expires") {
		t.Fatalf("cert issue with a month-long token: %+v", r)
	}
	// A token with two days left says so, in the CI job's own log.
	soon := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--name", "soon", "--ttl", "48h"))
	if r := pkid(t, env, "cert", "issue", "--ca-url", s.base, "--token", soon, "--role", "default", "--cn", "soon.internal", "--out", filepath.Join(t.TempDir(), "s.crt"), "--key-out", filepath.Join(t.TempDir(), "s.key")); r.code != 0 ||
		!regexp.MustCompile(`note: this token expires at \S+ \(in 4[78]h0m0s\): ask for a new one`).MatchString(r.stderr) {
		t.Fatalf("cert issue with a token two days from its end: %+v", r)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o", fi.Mode().Perm())
	}
	if o, err := exec.Command(openssl, "x509", "-in", crt, "-noout", "-ext", "subjectAltName").CombinedOutput(); err != nil || !strings.Contains(string(o), "127.0.0.3") {
		t.Fatalf("openssl x509: %v %s", err, o)
	}
	// A SPIFFE ID alone (an X.509-SVID): no --cn, one URI SAN, no subject.
	svid := filepath.Join(t.TempDir(), "svid.crt")
	mustPKID(t, env, "cert", "issue", "--ca-url", s.base, "--token", direct, "--role", "default", "--san", "spiffe://internal/ns/Prod/sa/web", "--out", svid, "--key-out", svid+".key")
	if o, err := exec.Command(openssl, "x509", "-in", svid, "-noout", "-ext", "subjectAltName", "-subject").CombinedOutput(); err != nil || !strings.Contains(string(o), "URI:spiffe://internal/ns/Prod/sa/web") || strings.Contains(string(o), "CN") {
		t.Fatalf("SVID: %v %s", err, o)
	}
	if r := pkid(t, env, "cert", "issue", "--ca-url", s.base, "--token", direct, "--role", "default", "--out", svid, "--key-out", svid+".key"); r.code != 2 || !strings.Contains(r.stderr, "give --cn NAME or at least one --san") {
		t.Fatalf("issue without a name: %+v", r)
	}
	// A mailbox goes as an email SAN (the default role allows no mail
	// domain, which is what the refusal says, not that '@' is no hostname).
	if r := pkid(t, env, "cert", "issue", "--ca-url", s.base, "--token", direct, "--role", "default", "--cn", "m.internal", "--san", "ops@internal", "--out", svid, "--key-out", svid+".key"); r.code != 1 || !strings.Contains(r.stderr, `email "ops@internal": this role allows no email SANs`) {
		t.Fatalf("issue with a mailbox: %+v", r)
	}
	// A certificate that cannot be written (its directory is gone) fails
	// the command and leaves the old key in place: the pair stays a pair.
	oldKey, _ := os.ReadFile(key)
	if r := pkid(t, env, "cert", "issue", "--ca-url", s.base, "--token", direct, "--role", "default", "--cn", "gen.internal", "--out", filepath.Join(t.TempDir(), "gone", "i.crt"), "--key-out", key); r.code != 1 || !strings.Contains(r.stderr, "i.crt") {
		t.Fatalf("issue into a missing directory: %+v", r)
	}
	if b, _ := os.ReadFile(key); !bytes.Equal(b, oldKey) {
		t.Fatal("the key was replaced though its certificate could not be written")
	}
	// A secret shown only once that cannot be shown (stdout on a full
	// disk: /dev/full fails every write) fails the command, which says what
	// now exists with nobody holding its secret.
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	// A token nobody can hold is revoked at once.
	r = pkidTo(t, full, nil, "token", "create", "--config", cfg, "--role", "default", "--name", "unprinted")
	if r.code != 1 || !regexp.MustCompile(`token [0-9a-f]{16} could not be printed \(.*\), so it was revoked`).MatchString(r.stderr) {
		t.Fatalf("token create to a full stdout: %+v", r)
	}
	if list := mustPKID(t, nil, "token", "list", "--config", cfg); strings.Contains(list, "unprinted") {
		t.Fatalf("the unprinted token is still listed:\n%s", list)
	}
	r = pkidTo(t, full, env, "cert", "issue", "--ca-url", s.base, "--token", direct, "--role", "default", "--cn", "unprinted.internal")
	keyless := regexp.MustCompile(`revoke it \(pkid cert revoke ([0-9a-f]+)\)`).FindStringSubmatch(r.stderr)
	if r.code != 1 || keyless == nil {
		t.Fatalf("cert issue with its key to a full stdout: %+v", r)
	}
	if st := s.recordStatus(t, keyless[1]); st != "valid" {
		t.Fatalf("the certificate whose key was lost: %q", st)
	}
	mustPKID(t, nil, "cert", "revoke", "--config", cfg, "--reason", "keyCompromise", keyless[1])
	if r := pkidTo(t, full, nil, "acme", "eab", "create", "--config", cfg, "--role", "default"); r.code != 1 || !strings.Contains(r.stderr, "could not be printed") {
		t.Fatalf("eab create to a full stdout: %+v", r)
	}
	// Refusals exit 1 with one line.
	if r := pkid(t, env, "cert", "sign", "--ca-url", s.base, "--token", "nope.nope", "--role", "default", "--csr", csrFile); r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "unknown or revoked token") {
		t.Fatalf("bad token: %+v", r)
	}
	// Names outside the role: refused, and the audit line says which names
	// were asked for (a CSR's CN and SANs; an issue request's CN, DNS
	// names, IPs, URIs and mailboxes, in that order) and which token asked.
	evil, _ := newCSR(t, "evil.example")
	evilFile := filepath.Join(t.TempDir(), "evil.csr")
	os.WriteFile(evilFile, []byte(evil), 0o644)
	if r := pkid(t, env, "cert", "sign", "--ca-url", s.base, "--token", direct, "--role", "default", "--csr", evilFile); r.code != 1 || !strings.Contains(r.stderr, "evil.example") {
		t.Fatalf("sign outside the role: %+v", r)
	}
	if r := pkid(t, env, "cert", "issue", "--ca-url", s.base, "--token", direct, "--role", "default", "--cn", "out.example", "--san", "a.out.example", "--san", "10.9.9.9", "--san", "spiffe://out/x", "--san", "ops@out.example", "--out", crt+".2", "--key-out", key+".2"); r.code != 1 {
		t.Fatalf("issue outside the role: %+v", r)
	}
	// token revoke goes through the admin socket while serve runs; the
	// token stops working at once, and revoking it again is a failure.
	if r := pkid(t, nil, "token", "revoke", "--config", cfg, direct); r.code != 0 || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("token revoke: %+v", r)
	}
	if r := pkid(t, env, "cert", "sign", "--ca-url", s.base, "--token", direct, "--role", "default", "--csr", csrFile); r.code != 1 || !strings.Contains(r.stderr, "unknown or revoked token") {
		t.Fatalf("revoked token still signs: %+v", r)
	}
	if r := pkid(t, nil, "token", "revoke", "--config", cfg, direct); r.code != 1 {
		t.Fatalf("token revoke twice: %+v", r)
	}
	if r := pkid(t, nil, "token", "revoke", "--config", cfg); r.code != 2 {
		t.Fatalf("token revoke without an id: %+v", r)
	}
	leaf, _ := ca.LoadCertificate(crt)
	serial := ca.SerialString(leaf.SerialNumber)
	mustPKID(t, env, "cert", "revoke", "--ca-url", s.base, "--token", admin, "--reason", "keyCompromise", serial)
	if r := pkid(t, env, "cert", "revoke", "--ca-url", s.base, "--token", admin, serial); r.code != 1 || !strings.Contains(r.stderr, "already revoked") {
		t.Fatalf("revoke twice: %+v", r)
	}
	logs := s.logs()
	if strings.Contains(logs, strings.Split(admin, ".")[1]) || strings.Contains(logs, "PRIVATE KEY") {
		t.Fatal("a secret reached the server log")
	}
	if !strings.Contains(logs, `"event":"issue"`) || !strings.Contains(logs, `"outcome":"refused"`) || !strings.Contains(logs, `"event":"revoke"`) {
		t.Fatalf("audit lines missing:\n%s", logs)
	}
	for _, want := range [][]string{{"evil.example", "evil.example"}, {"out.example", "a.out.example", "10.9.9.9", "spiffe://out/x", "ops@out.example"}} {
		if !refusalLogged(logs, want, strings.Split(direct, ".")[0]) {
			t.Fatalf("no refused issue audit line by token %s with names %q:\n%s", strings.Split(direct, ".")[0], want, logs)
		}
	}
	if !slices.ContainsFunc(auditLines(logs), func(l auditLine) bool {
		return l.Event == "revoke" && l.Outcome == "revoked" && l.Serial == serial && l.TokenID == strings.Split(admin, ".")[0]
	}) {
		t.Fatalf("no revoke audit line naming the admin token's id:\n%s", logs)
	}
	if !slices.ContainsFunc(auditLines(logs), func(l auditLine) bool {
		return l.Event == "token.create" && l.Requester == "admin-socket" && l.Outcome == "accepted" && l.TokenID == strings.Split(admin, ".")[0]
	}) {
		t.Fatalf("no token.create audit line for the admin token, by the admin socket:\n%s", logs)
	}
}

// refusalLogged reports whether logs hold an audit line for a refused
// issuance of exactly these names, asked with the token whose id is given.
func refusalLogged(logs string, names []string, tokenID string) bool {
	for _, l := range auditLines(logs) {
		if l.Event == "issue" && l.Outcome == "refused" && slices.Equal(l.Names, names) && l.TokenID == tokenID {
			return true
		}
	}
	return false
}

// auditLine is the part of an audit line the tests look at.
type auditLine struct {
	Event, Requester, Outcome, Serial, Via, Challenge string
	RequestID                                         string `json:"request_id"`
	TokenID                                           string `json:"token_id"`
	Names                                             []string
}

// auditLines parses the server log's audit lines.
func auditLines(logs string) []auditLine {
	var out []auditLine
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Msg string
			auditLine
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "audit" {
			out = append(out, l.auditLine)
		}
	}
	return out
}

// TestCrashDuringLoad: SIGTERM, and separately SIGKILL, while signs are in
// flight. Every client that got a certificate finds its record after a
// restart on the same files.
func TestCrashDuringLoad(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			d, https, _ := initCA(t)
			tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default"))
			s := serve(t, d, https)
			csr, _ := newCSR(t, "load.internal")
			var mu sync.Mutex
			var acked []string
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						sn, err := s.sign(ctx, tok, csr)
						if err != nil {
							continue
						}
						mu.Lock()
						acked = append(acked, sn)
						mu.Unlock()
					}
				}()
			}
			// Kill it mid-load: once certificates flow (a fixed sleep saw
			// none on a loaded machine), and 300 ms into the load at least.
			acks := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
			time.Sleep(300 * time.Millisecond)
			for deadline := time.Now().Add(20 * time.Second); acks() < 10 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			s.stop(t, sig)
			cancel()
			wg.Wait()
			if len(acked) < 10 {
				t.Fatalf("only %d certificates before the %s", len(acked), sig)
			}
			s2 := serve(t, d, https)
			for _, sn := range acked {
				if code := s2.status(t, "/v1/certs/"+sn); code != 200 {
					t.Fatalf("certificate %s was handed out but its record is gone after %s (HTTP %d)", sn, sig, code)
				}
			}
			t.Logf("%d acknowledged certificates all recorded after %s", len(acked), sig)
		})
	}
}

func TestExitCodes(t *testing.T) {
	if r := pkid(t, nil, "frobnicate"); r.code != 2 {
		t.Fatalf("unknown command: %d", r.code)
	}
	if r := pkid(t, nil, "serve", "--bogus"); r.code != 2 {
		t.Fatalf("unknown flag: %d", r.code)
	}
	if r := pkid(t, nil, "serve"); r.code != 2 {
		t.Fatalf("serve without config: %d", r.code)
	}
	if r := pkid(t, nil, "serve", "--config", "/nonexistent/pkid.yaml"); r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("serve with missing config: %+v", r)
	}
	if r := pkid(t, nil, "serve", "--config", "/dev/null"); r.code != 1 || !strings.Contains(r.stderr, "the file is empty") {
		t.Fatalf("serve with an empty config: %+v", r)
	}
	// A bad serial or reason is bad usage, told before any file is read or
	// server dialled (there is neither here).
	for _, args := range [][]string{{"zz!"}, {"ab", "--reason", "keycompromise"}} {
		r := pkid(t, nil, append([]string{"cert", "revoke", "--ca-url", "https://127.0.0.1:1", "--token", "x", "--root", "/nonexistent"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "not") || strings.Contains(r.stderr, "nonexistent") {
			t.Fatalf("cert revoke %v: %+v", args, r)
		}
	}
	// Flags that make no token are bad usage, told before the config is
	// read (there is none here).
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "needs at least one role (or --admin)"},
		{[]string{"--role", "default", "--once"}, "must be bound to --names"},
		{[]string{"--role", "default", "--names", "a.internal"}, "add --once"},
		{[]string{"--role", "default", "--once", "--names", "a.internal", "--admin"}, "cannot be --admin"},
		{[]string{"--role", "default", "--ttl", "-1h"}, "want a positive duration"},
		{[]string{"--role", "default", "--once", "--names", "a.internal,"}, `--names "a.internal," holds an empty name`},
	} {
		r := pkid(t, nil, append([]string{"token", "create", "--config", "/nonexistent/pkid.yaml"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "nonexistent") {
			t.Fatalf("token create %v: %+v", tc.args, r)
		}
	}
	// An unknown key type, or a CA name whose intermediate's common name
	// would pass RFC 5280's 64 characters, is bad usage, told before
	// anything is written.
	bad := filepath.Join(t.TempDir(), "bad")
	if r := pkid(t, nil, "init", "--dir", bad, "--key-type", "rsa-1024"); r.code != 2 || !strings.Contains(r.stderr, "want one of ec-p256") {
		t.Fatalf("init with an unknown key type: %+v", r)
	}
	if r := pkid(t, nil, "init", "--dir", bad, "--name", strings.Repeat("N", 48)); r.code != 2 || !strings.Contains(r.stderr, "at most 47 fit") {
		t.Fatalf("init with a 48-character name: %+v", r)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("init with an unknown key type left %s: %v", bad, err)
	}
	if r := pkid(t, nil, "ca", "rotate-intermediate", "--dir", bad, "--key-type", "ec-p521"); r.code != 2 || !strings.Contains(r.stderr, "want one of ec-p256") {
		t.Fatalf("rotate-intermediate with an unknown key type: %+v", r)
	}
	// A negative --validity made an intermediate already expired, and
	// retired the working one.
	for _, v := range []string{"-1h", "1h"} {
		if r := pkid(t, nil, "ca", "rotate-intermediate", "--dir", bad, "--validity", v); r.code != 2 || !strings.Contains(r.stderr, "want at least 24h0m0s") {
			t.Fatalf("rotate-intermediate --validity %s: %+v", v, r)
		}
	}
	// backup --out: "-" and a directory are bad usage, told before the
	// config is read (there is none here).
	for out, want := range map[string]string{"-": "it goes to a file", t.TempDir(): "is a directory; name a file in it"} {
		if r := pkid(t, nil, "backup", "--config", "/nonexistent/pkid.yaml", "--out", out); r.code != 2 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "nonexistent") {
			t.Fatalf("backup --out %s: %+v", out, r)
		}
	}
	if r := pkid(t, nil, "token"); r.code != 2 || !strings.Contains(r.stderr, "create") {
		t.Fatalf("a group without its subcommand: %+v", r)
	}
	// A wrong intermediate password: one line that says so, without the
	// password, and no server.
	d, _, _ := initCA(t)
	const wrong = "not-the-password-4f1c"
	if err := os.WriteFile(filepath.Join(d, "secrets", "password"), []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := pkid(t, nil, "serve", "--config", filepath.Join(d, "pkid.yaml")); r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 ||
		!strings.Contains(r.stderr, "intermediate key") || !strings.Contains(r.stderr, "wrong password") || strings.Contains(r.stderr, wrong) {
		t.Fatalf("serve with a wrong password: %+v", r)
	}
}

// TestDeepCADir: a CA directory deep in a volume mount (a Kubernetes
// pod's paths run past 100 bytes) puts D/pkid.sock beyond what a socket
// address holds; serve still binds it, mode 0600, admin commands still
// reach the running server through it, and it is gone after a stop.
func TestDeepCADir(t *testing.T) {
	d := filepath.Join(t.TempDir(), "var-lib-kubelet-pods-"+strings.Repeat("0", 36), "volumes", "kubernetes.io~empty-dir", "pkid-data", "ca")
	sock := filepath.Join(d, "pkid.sock")
	if len(sock) <= 108 {
		t.Fatalf("socket path %d bytes: not deep enough to test", len(sock))
	}
	https, plain := testutil.FreeAddr(t), testutil.FreeAddr(t)
	mustPKID(t, nil, "init", "--dir", d, "--listen", https, "--http-listen", plain)
	s := serve(t, d, https)
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %s: %v %v", sock, fi, err)
	}
	// bbolt admits one process: with serve holding the store, this goes
	// through the socket or not at all.
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default", "--name", "deep"))
	if list := mustPKID(t, nil, "token", "list", "--config", filepath.Join(d, "pkid.yaml")); !strings.Contains(list, "deep") || strings.Contains(list, strings.Split(tok, ".")[1]) {
		t.Fatalf("token list: %s", list)
	}
	s.stop(t, syscall.SIGTERM)
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after a stop: %v", err)
	}
}

// TestAdminSocketElsewhere: with the CA directory read-only (a
// Kubernetes ConfigMap or Secret mount) the socket cannot go beside
// pkid.yaml; admin_socket puts it on a writable path, where serve binds it
// and the admin commands find it. A socket serve cannot create stops it
// with a line that names the key.
func TestAdminSocketElsewhere(t *testing.T) {
	d, https, _ := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(raw, []byte("admin_socket: /nonexistent/run/pkid.sock\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := pkid(t, nil, "serve", "--config", cfg); r.code != 1 || !strings.Contains(r.stderr, "set admin_socket in "+cfg) {
		t.Fatalf("serve with a socket it cannot create: %+v", r)
	}
	sock := filepath.Join(t.TempDir(), "run", "pkid.sock")
	os.MkdirAll(filepath.Dir(sock), 0o700)
	if err := os.WriteFile(cfg, append(raw, []byte("admin_socket: "+sock+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	serve(t, d, https)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket at %s: %v", sock, err)
	}
	if _, err := os.Stat(filepath.Join(d, "pkid.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a socket beside pkid.yaml as well: %v", err)
	}
	if list := mustPKID(t, nil, "token", "list", "--config", cfg); !strings.Contains(list, "ID") {
		t.Fatalf("token list through %s: %s", sock, list)
	}
}

// TestAdminSocketInUse: a second serve whose admin socket is the path a
// running one listens on (a second config beside the first, here) refuses
// to start, rather than removing the socket and leaving the first server
// without admin commands.
func TestAdminSocketInUse(t *testing.T) {
	d, https, plain := initCA(t)
	serve(t, d, https)
	raw, err := os.ReadFile(filepath.Join(d, "pkid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	https2, plain2 := testutil.FreeAddr(t), testutil.FreeAddr(t)
	second := strings.NewReplacer("listen: "+https, "listen: "+https2, "http_listen: "+plain, "http_listen: "+plain2,
		"path: db/pkid.db", "path: db/second.db").Replace(string(raw))
	cfg2 := filepath.Join(d, "second.yaml")
	if err := os.WriteFile(cfg2, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pkidBin, "serve", "--config", cfg2)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("a second serve on the same admin socket started:\n%s", out)
	}
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "another pkid serve is listening on it") || !strings.Contains(string(out), "set admin_socket in "+cfg2) {
		t.Fatalf("second serve: %v\n%s", err, out)
	}
	if list := mustPKID(t, nil, "token", "list", "--config", filepath.Join(d, "pkid.yaml")); !strings.Contains(list, "ID") {
		t.Fatalf("the first server's admin socket after the second gave up: %s", list)
	}
	// An admin_socket that names a file (here the second config itself)
	// is refused, and the file kept.
	if err := os.WriteFile(cfg2, []byte(second+"admin_socket: "+cfg2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := pkid(t, nil, "serve", "--config", cfg2); r.code != 1 || !strings.Contains(r.stderr, "a file that is not a socket is there") {
		t.Fatalf("serve with admin_socket naming a file: %+v", r)
	}
	if _, err := os.Stat(cfg2); err != nil {
		t.Fatalf("serve removed the file admin_socket named: %v", err)
	}
}

// TestLooseKeyFileWarned: an intermediate key file others may read is
// served from (Kubernetes mounts secrets 0644 by default) but warned about,
// by config check, in the start log and on /healthz.
func TestLooseKeyFileWarned(t *testing.T) {
	d, https, _ := initCA(t)
	if err := os.Chmod(filepath.Join(d, "secrets", "intermediate.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "intermediate.key is readable by others than its owner (mode 0644)"
	if r := pkid(t, nil, "config", "check", "--config", filepath.Join(d, "pkid.yaml")); r.code != 0 || !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, want) {
		t.Fatalf("config check of a loose key file: %+v", r)
	}
	s := serve(t, d, https)
	resp, err := s.client.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], want) {
		t.Fatalf("healthz %+v", h)
	}
	if !strings.Contains(s.logs(), want) {
		t.Fatalf("no start warning in the log:\n%s", s.logs())
	}
}

// TestVersion: `pkid --version` and `pkid version` say which pkid this is
// (with the Go release it was built with), and serve's "pkid serving"
// line names it and the config, so a log sent with a bug report says what
// ran.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := pkid(t, nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "pkid ") || !strings.Contains(r.stdout, "go1.") || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("pkid %s: %+v", args[0], r)
		}
	}
	d, https, _ := initCA(t)
	s := serve(t, d, https)
	want := strings.TrimSpace(strings.TrimPrefix(mustPKID(t, nil, "version"), "pkid "))
	for _, l := range strings.Split(s.logs(), "\n") {
		var line struct{ Msg, Version, Config string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "pkid serving" {
			if line.Version != want || line.Config != filepath.Join(d, "pkid.yaml") {
				t.Fatalf("start line %s, want version %q", l, want)
			}
			return
		}
	}
	t.Fatalf("no start line with the version:\n%s", s.logs())
}

// TestLowDiskWarned: with storage.min_free_mb above what the store's
// filesystem has free, config check warns beforehand and serve at start,
// in the words /healthz uses.
func TestLowDiskWarned(t *testing.T) {
	d, https, _ := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), "path: db/pkid.db}", "path: db/pkid.db, min_free_mb: 1099511627776}", 1)
	if edited == string(raw) {
		t.Fatal("no storage line to edit")
	}
	if err := os.WriteFile(cfg, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "less than storage.min_free_mb (1099511627776)"
	if r := pkid(t, nil, "config", "check", "--config", cfg); r.code != 0 || !strings.Contains(r.stderr, "warning: the store's filesystem has ") || !strings.Contains(r.stderr, want) {
		t.Fatalf("config check: %+v", r)
	}
	s := serve(t, d, https)
	if !strings.Contains(s.logs(), want) {
		t.Fatalf("serve did not warn at start:\n%s", s.logs())
	}
}
