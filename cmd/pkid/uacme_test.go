package main_test

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// systemBundle is where Debian's libcurl (and so uacme) reads the CAs it
// trusts; uacme has no flag or variable to name another file.
const systemBundle = "/etc/ssl/certs/ca-certificates.crt"

// TestUacme gets and revokes a certificate with Debian's uacme: a C client
// on libcurl and GnuTLS that polls the challenge rather than the
// authorization and gives up on a challenge without a token (CONTRACT.md),
// so it shares neither code nor habits with the other clients tested. Its
// account key is RSA (RS256 JWS), the certificate's EC. uacme trusts only
// the system's bundle, so it runs in a private mount namespace where our
// root is bind-mounted over that bundle: the machine's trust store is
// never touched.
func TestUacme(t *testing.T) {
	uacme := needTool(t, "uacme")
	unshare := needTool(t, "unshare")
	if _, err := os.Stat(systemBundle); err != nil {
		if os.Getenv("PKID_E2E") == "1" {
			t.Fatalf("uacme's CA bundle (package ca-certificates) is required with PKID_E2E=1: %v", err)
		}
		t.Skipf("no %s to stand our root in for", systemBundle)
	}
	// -r maps the caller to root in a new user namespace, so a non-root
	// developer can bind-mount too. A kernel or container that forbids
	// namespaces is no missing tool: the test says so and skips.
	if out, err := exec.Command(unshare, "-rm", "true").CombinedOutput(); err != nil {
		t.Skipf("this machine forbids mount namespaces (%v: %s); uacme cannot be pointed at our root", err, strings.TrimSpace(string(out)))
	}
	d, https, _, h01 := initACMECA(t, map[string]string{"  hosts: {}\n": "  hosts: {uacme.internal: 127.0.0.1}\n"})
	s := serve(t, d, https)

	work := t.TempDir()
	webroot := serveWebroot(t, h01)
	// The hook's arguments: method type identifier token key-authorization.
	hook := filepath.Join(work, "hook.sh")
	os.WriteFile(hook, []byte(`#!/bin/sh
[ "$2" = http-01 ] || exit 1
case "$1" in
  begin) printf '%s' "$5" > "`+webroot+`/$4" ;;
  done|failed) rm -f "`+webroot+`/$4" ;;
  *) exit 1 ;;
esac
`), 0o755)

	conf := filepath.Join(work, "uacme")
	root := filepath.Join(d, "certs", "root.crt")
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args = append([]string{"-v", "-c", conf, "-a", s.base + "/acme/default/directory"}, args...)
		cmd := exec.CommandContext(ctx, unshare, append([]string{"-rm", "sh", "-c", `mount --bind "$0" ` + systemBundle + ` && exec "$@"`, root, uacme}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("uacme %s: %v\n%s\n--- pkid log ---\n%s", strings.Join(args[5:], " "), err, out, tail(s.logs(), 3000))
		}
		return string(out)
	}
	run("-y", "new")
	if out := run("-t", "EC", "-h", hook, "issue", "uacme.internal"); !strings.Contains(out, "saving certificate") {
		t.Fatalf("uacme issue saved no certificate:\n%s", out)
	}
	certFile := filepath.Join(conf, "uacme.internal", "cert.pem")
	leaf, sn := s.issuedFor(t, certFile, "uacme.internal")
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("certificate key %s, want the EC key -t EC asked for", leaf.PublicKeyAlgorithm)
	}
	run("revoke", certFile)
	if st := s.recordStatus(t, sn); st != "revoked" {
		t.Fatalf("after uacme revoke: %s", st)
	}
}
