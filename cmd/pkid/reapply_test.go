package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
	"pkid/store"
)

// TestRestoreReappliesRevocations: `pkid restore` refuses while serve runs
// or the store's lock is held, and a file that is not a store; it puts a
// backup in the store's place and keeps the store it replaced. A store
// restored from a backup has lost the revocations made after the backup.
// Restored in place, serve finds
// its copy of the last CRL newer than the store and puts them back before
// its first CRL, saying so on /healthz, and withdraws again, from its
// journal, the token revoked after the backup. Restored alone (a new host), the
// CA's CRL no longer lists them and their certificates read valid again;
// `pkid cert revoke --config --from-crl` with a copy of /crl/bundle.pem
// taken before the loss (a relying party's) puts each back with its
// reason, through the admin socket (audit lines naming the CRL) and with
// serve stopped;
// the root's CRL in the bundle is skipped, a certificate issued after the
// backup (and revoked) is listed on the CRL again with no record made for
// it, and applying it twice changes nothing. Bad usage and files that are not this CA's CRLs are refused.
func TestRestoreReappliesRevocations(t *testing.T) {
	d, https, plain := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default"))
	s := serve(t, d, https)
	sign := func(name string) string {
		t.Helper()
		csr, _ := newCSR(t, name)
		sn, err := s.sign(t.Context(), tok, csr)
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	kept, lost1, lost2 := sign("kept.internal"), sign("lost1.internal"), sign("lost2.internal")
	leaked := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--name", "leaked"))
	backup := filepath.Join(t.TempDir(), "backup.db")
	mustPKID(t, nil, "backup", "--config", cfg, "--out", backup)
	leakedID, _, _ := strings.Cut(leaked, ".")
	mustPKID(t, nil, "token", "revoke", "--config", cfg, leakedID)
	mustPKID(t, nil, "cert", "revoke", "--config", cfg, "--reason", "superseded", lost1)
	mustPKID(t, nil, "cert", "revoke", "--config", cfg, "--reason", "cessationOfOperation", lost2)
	late := sign("late.internal")
	mustPKID(t, nil, "cert", "revoke", "--config", cfg, "--reason", "privilegeWithdrawn", late)
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	var pemBundle []byte
	waitFor(t, "the CRL bundle to list the three revocations", func() bool {
		pemBundle, _ = testutil.Fetch(t, http.DefaultClient, "http://"+plain+"/crl/bundle.pem")
		return crlLists(t, pemBundle, lost1, lost2, late)
	})
	if err := os.WriteFile(bundle, pemBundle, 0o644); err != nil {
		t.Fatal(err)
	}

	live := filepath.Join(d, "db", "pkid.db")
	restore := func() string {
		t.Helper()
		return pkid(t, nil, "restore", "--config", cfg, "--from", backup).stderr
	}
	notAStore := filepath.Join(t.TempDir(), "not-a-store.db")
	if err := os.WriteFile(notAStore, []byte("not a bbolt file"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	if r := pkid(t, nil, "restore", "--config", cfg, "--from", backup); r.code != 1 || !strings.Contains(r.stderr, "pkid serve is running") {
		t.Fatalf("fail/restore while serve runs: exit %d: %s", r.code, r.stderr)
	}
	// On the same host: serve keeps a copy of its last CRL beside the
	// store, finds the restored store older, and puts the revocations back
	// itself before it signs a CRL.
	s.stop(t, syscall.SIGKILL)
	held, err := store.OpenBolt(live) // the lock a serve without its socket would hold
	if err != nil {
		t.Fatal(err)
	}
	if r := pkid(t, nil, "restore", "--config", cfg, "--from", backup); r.code != 1 || !strings.Contains(r.stderr, "another process holds the lock of "+live) {
		t.Fatalf("fail/restore while the store is locked: exit %d: %s", r.code, r.stderr)
	}
	held.Close()
	for _, tc := range []struct {
		name string
		from string
		code int
		want string
	}{
		{"fail/restore the live store onto itself", live, 2, "is the live store itself"},
		{"fail/restore from a file that is not a store", notAStore, 1, "is not a whole store (nothing replaced)"},
	} {
		if r := pkid(t, nil, "restore", "--config", cfg, "--from", tc.from); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("%s: exit %d, want %d with %q: %s", tc.name, r.code, tc.code, tc.want, r.stderr)
		}
	}
	if out := restore(); !strings.Contains(out, "restored "+live) || !strings.Contains(out, "next: start pkid serve; it puts back") {
		t.Fatalf("ok/restore: %s", out)
	}
	aside, _ := filepath.Glob(live + ".replaced-*")
	if len(aside) != 1 {
		t.Fatalf("ok/the replaced store is kept: %v", aside)
	}
	if b, err := os.ReadFile(aside[0]); err != nil || len(b) != len(before) {
		t.Fatalf("ok/the replaced store is kept whole: %d bytes, was %d (%v)", len(b), len(before), err)
	}
	s = serve(t, d, https)
	for sn, reason := range map[string]string{lost1: "superseded", lost2: "cessationOfOperation"} {
		if rec := s.record(t, sn); rec.Status != "revoked" || rec.Reason != reason {
			t.Fatalf("ok/put back at start from the CRL copy: %s %+v", sn, rec)
		}
	}
	if b, _ := testutil.Fetch(t, http.DefaultClient, "http://"+plain+"/crl/bundle.pem"); !crlLists(t, b, lost1, lost2, late) {
		t.Fatal("ok/the first CRL after the restore lists the three")
	}
	if !regexp.MustCompile(`"msg":"audit","offline_at":"[^"]+","event":"restore","requester":"store",.*"from":"` + regexp.QuoteMeta(backup) + `"`).MatchString(s.logs()) {
		t.Fatalf("ok/the restore is on the audit log:\n%s", s.logs())
	}
	if !strings.Contains(s.getText(t, "/healthz"), "the store is older than CRL") || !strings.Contains(s.logs(), "store older than the last CRL served") {
		t.Fatalf("ok/the restore is said on /healthz and in the log:\n%s", s.logs())
	}
	// The token revoked after the backup is in the restored store, and
	// withdrawn again from the journal before serve answers.
	csr, _ := newCSR(t, "leak.internal")
	if _, err := s.sign(t.Context(), leaked, csr); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("ok/the token revoked after the backup stays revoked: %v", err)
	}
	if !strings.Contains(s.getText(t, "/healthz"), "token "+leakedID+", withdrawn at ") {
		t.Fatalf("ok/the token withdrawn again is said on /healthz:\n%s", s.getText(t, "/healthz"))
	}

	// On a new host, with only the store file: the copy is gone, and the
	// revocations with it.
	s.stop(t, syscall.SIGKILL)
	if err := os.RemoveAll(filepath.Join(d, "db", "crl-copies")); err != nil {
		t.Fatal(err)
	}
	if out := restore(); !strings.Contains(out, "no CRL copies in") || !strings.Contains(out, "--from-crl FILE") {
		t.Fatalf("ok/restore on a new machine says what to do: %s", out)
	}
	s = serve(t, d, https)
	if st := s.recordStatus(t, lost1); st != "valid" {
		t.Fatalf("the restored store should have lost the revocation: %s", st)
	}
	if rl := getCRL(t, plain); len(rl.RevokedCertificateEntries) != 0 {
		t.Fatalf("the restored CA's CRL lists %d revocations", len(rl.RevokedCertificateEntries))
	}

	check := func(where string, r result) {
		t.Helper()
		for _, want := range []string{
			"skipped the root's CRL",
			"revoked " + lost1 + " again (superseded, as of ",
			"revoked " + lost2 + " again (cessationOfOperation, as of ",
			"listed " + late + " on the CRL again (privilegeWithdrawn, as of ",
			"0 already revoked or listed in the store",
		} {
			if r.code != 0 || !strings.Contains(r.stderr, want) {
				t.Fatalf("ok/%s: exit %d, want %q in:\n%s", where, r.code, want, r.stderr)
			}
		}
		if strings.Contains(r.stderr, kept) {
			t.Fatalf("ok/%s: names the certificate never revoked:\n%s", where, r.stderr)
		}
	}
	check("through the admin socket", pkid(t, nil, "cert", "revoke", "--config", cfg, "--from-crl", bundle))
	for sn, reason := range map[string]string{lost1: "superseded", lost2: "cessationOfOperation"} {
		if rec := s.record(t, sn); rec.Status != "revoked" || rec.Reason != reason {
			t.Fatalf("ok/%s put back: %+v", sn, rec)
		}
	}
	if st := s.recordStatus(t, kept); st != "valid" {
		t.Fatalf("ok/never revoked: %s", st)
	}
	if st := s.status(t, "/v1/certs/"+late); st != http.StatusNotFound {
		t.Fatalf("ok/no record is made for the unrecorded one: GET /v1/certs/%s: %d", late, st)
	}
	waitFor(t, "the restored CA's CRL to list the three again", func() bool {
		b, _ := testutil.Fetch(t, http.DefaultClient, "http://"+plain+"/crl/bundle.pem")
		return crlLists(t, b, lost1, lost2, late)
	})
	for _, re := range []string{
		`"msg":"audit".*"event":"revoke".*"requester":"admin-socket".*"serial":"` + lost1 + `".*"from_crl":"\d+"`,
		`"msg":"audit".*"event":"revoke".*"requester":"admin-socket".*"serial":"` + late + `".*"record":"none","from_crl":"\d+"`,
	} {
		if !regexp.MustCompile(re).MatchString(s.logs()) {
			t.Fatalf("no audit line %s:\n%s", re, s.logs())
		}
	}
	if r := pkid(t, nil, "cert", "revoke", "--config", cfg, "--from-crl", bundle); r.code != 0 || !strings.Contains(r.stderr, "3 already revoked or listed in the store") || strings.Contains(r.stderr, " again ") {
		t.Fatalf("ok/twice changes nothing: exit %d:\n%s", r.code, r.stderr)
	}

	s.stop(t, syscall.SIGTERM)
	if err := os.RemoveAll(filepath.Join(d, "db", "crl-copies")); err != nil {
		t.Fatal(err)
	}
	restore()
	check("with serve stopped", pkid(t, nil, "cert", "revoke", "--config", cfg, "--from-crl", bundle))
	s = serve(t, d, https)
	if rl := getCRL(t, plain); len(rl.RevokedCertificateEntries) != 3 {
		t.Fatalf("ok/the CRL signed at start lists %d revocations, want 3", len(rl.RevokedCertificateEntries))
	}

	// `cert list` keeps its columns for the longest status.
	out := mustPKID(t, nil, "cert", "list", "--config", cfg, "--status", "revoked")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	col := strings.Index(lines[0], "NAMES")
	if len(lines) != 3 || !strings.Contains(out, "revoked (cessationOfOperation)") {
		t.Fatalf("cert list --status revoked:\n%s", out)
	}
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-2:col] != "  " || l[col] == ' ' {
			t.Fatalf("cert list: the names are not in the NAMES column:\n%s", out)
		}
	}

	other, _, _ := initCA(t)
	leaf := filepath.Join(d, "certs", "intermediate.crt")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fail/no --config", []string{"--ca-url", s.base, "--from-crl", bundle}, 2, "--from-crl needs --config"},
		{"fail/--reason", []string{"--config", cfg, "--reason", "superseded", "--from-crl", bundle}, 2, "not --reason"},
		{"fail/a serial too", []string{"--config", cfg, "--from-crl", bundle, late}, 2, "--from-crl takes no SERIAL"},
		{"fail/a certificate, not a CRL", []string{"--config", cfg, "--from-crl", leaf}, 1, `a PEM block "CERTIFICATE", not "X509 CRL"`},
		{"fail/the root's CRL only", []string{"--config", cfg, "--from-crl", filepath.Join(d, "certs", "root.crl")}, 1, "no CRL of an intermediate"},
		{"fail/another CA's CRL", []string{"--config", filepath.Join(other, "pkid.yaml"), "--from-crl", bundle}, 1, "not by this CA's intermediate"},
	} {
		r := pkid(t, nil, append([]string{"cert", "revoke"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("%s: exit %d (want %d), want %q in:\n%s", tc.name, r.code, tc.code, tc.want, r.stderr)
		}
	}
}

// crlLists reports whether the CRLs of a PEM bundle list every serial.
func crlLists(t *testing.T, bundle []byte, serials ...string) bool {
	t.Helper()
	var listed []string
	for _, rl := range testutil.ParseCRLs(t, bundle) {
		for _, e := range rl.RevokedCertificateEntries {
			listed = append(listed, ca.SerialString(e.SerialNumber))
		}
	}
	for _, sn := range serials {
		if !slices.Contains(listed, sn) {
			return false
		}
	}
	return true
}

// waitFor polls cond for up to 10 s, failing the test with what it
// waited for.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
