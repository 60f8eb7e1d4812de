package main_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestJavaPKIX: Java's PKIX validator (testdata/PKIXCheck.java), a strict
// relying party that checks revocation at every level of a chain, as a
// Java service with revocation checking on does, accepts a pkid chain
// through CRLs alone and through OCSP, and sees a revoked leaf by both. It
// finds the root's CRL, and so the intermediate's status, only through the
// intermediate's CRL DP: without it the chain is "undetermined", which is
// refusal. An intermediate revoked with `pkid ca root-crl` is seen once
// serve has reloaded the root's CRL. Ed25519 answers OCSP through the
// delegated responder, which Java checks too.
func TestJavaPKIX(t *testing.T) {
	javac := needTool(t, "javac")
	java := needTool(t, "java")
	classes := t.TempDir()
	if out, err := exec.Command(javac, "-d", classes, filepath.Join("testdata", "PKIXCheck.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	for _, kt := range []string{"ec-p256", "ed25519"} {
		t.Run(kt, func(t *testing.T) {
			t.Parallel()
			d, https, _ := initCA(t, "--key-type", kt)
			cfg := filepath.Join(d, "pkid.yaml")
			s := serve(t, d, https)
			root := filepath.Join(d, "certs", "root.crt")
			admin := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--admin"))
			work := t.TempDir()
			issue := func(name string) (chain, serial string) {
				chain = filepath.Join(work, name+".crt")
				mustPKID(t, nil, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", admin, "--role", "default", "--cn", name, "--ttl", "10m", "--out", chain, "--key-out", filepath.Join(work, name+".key"))
				leaf, err := ca.LoadCertificate(chain)
				if err != nil {
					t.Fatal(err)
				}
				return chain, ca.SerialString(leaf.SerialNumber)
			}
			check := func(chain, mode string) string {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, java, "-Dcom.sun.security.enableCRLDP=true", "-cp", classes, "PKIXCheck", root, chain, mode).CombinedOutput()
				if err != nil {
					t.Fatalf("java: %v\n%s", err, out)
				}
				return strings.TrimSpace(string(out))
			}
			// await runs the check until its answer starts with want: a
			// revocation, or a reloaded root CRL, is work done elsewhere.
			await := func(chain, mode, want string) {
				t.Helper()
				deadline := time.Now().Add(testutil.DutyWait)
				for {
					got := check(chain, mode)
					if strings.HasPrefix(got, want) {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s by %s: Java says %q, want %q\n--- pkid log ---\n%s", filepath.Base(chain), mode, got, want, tail(s.logs(), 3000))
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			leaf, serial := issue("java.internal")
			other, _ := issue("java2.internal")
			for _, mode := range []string{"crl", "ocsp"} {
				if got := check(leaf, mode); got != "VALID" {
					t.Fatalf("%s: Java says %q", mode, got)
				}
			}
			mustPKID(t, nil, "cert", "revoke", "--config", cfg, "--reason", "keyCompromise", serial)
			for _, mode := range []string{"crl", "ocsp"} {
				await(leaf, mode, "INVALID index=0 reason=REVOKED")
			}
			if got := check(other, "crl"); got != "VALID" {
				t.Fatalf("the other leaf: Java says %q", got)
			}
			if kt != "ec-p256" {
				return
			}
			inter, err := ca.LoadCertificate(filepath.Join(d, "certs", "intermediate.crt"))
			if err != nil {
				t.Fatal(err)
			}
			mustPKID(t, nil, "ca", "root-crl", "--dir", d, "--revoke-intermediate", ca.SerialString(inter.SerialNumber), "--reason", "keyCompromise")
			await(other, "crl", "INVALID index=1 reason=REVOKED")
		})
	}
}
