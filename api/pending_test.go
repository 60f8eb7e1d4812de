package api_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/testutil"
)

// TestPendingChangesOnHealthz: on its timer, serve compares the files it
// started from with what it runs on, and /healthz says what is not
// applied: an intermediate rotated on disk (issuance goes on from the one
// loaded), a setting that needs a restart, roles that need a reload (a
// reload clears it), a pkid.yaml that no longer loads. Each warning goes
// when its file is put back, and never names a path.
func TestPendingChangesOnHealthz(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), nil)
	s := startServer(t, dir, ports)
	defer s.stop()
	yamlPath, certPath := filepath.Join(dir, "pkid.yaml"), filepath.Join(dir, "certs", "intermediate.crt")
	origYAML, _ := os.ReadFile(yamlPath)
	origCert, _ := os.ReadFile(certPath)
	write := func(path string, b []byte) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	// until waits for /healthz's warnings to satisfy ok.
	until := func(what string, ok func(w []string) bool) []string {
		t.Helper()
		deadline := time.Now().Add(testutil.DutyWait)
		for {
			var h struct {
				Status   string
				Warnings []string
			}
			s.do(t, "GET", "/healthz", "", nil, &h)
			if ok(h.Warnings) {
				if h.Status != "ok" || slices.ContainsFunc(h.Warnings, func(w string) bool { return strings.Contains(w, dir) }) {
					t.Fatalf("%s: /healthz %+v", what, h)
				}
				return h.Warnings
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /healthz warnings %q", what, h.Warnings)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	has := func(part string) func([]string) bool {
		return func(w []string) bool {
			return slices.ContainsFunc(w, func(x string) bool { return strings.Contains(x, part) })
		}
	}
	none := func(w []string) bool { return len(w) == 0 }
	until("ok/nothing changed", none)

	// pkid ca rotate-intermediate, then no restart.
	inUse := s.run.CA.Intermediate()
	next, _, err := ca.NextIntermediate(s.run.CA.Root(), testutil.RootKey(t, "ec-p256"), inUse, "", 0, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	write(certPath, ca.PEMCert(next.Raw))
	w := until("fail/a rotated intermediate", has("restart serve to issue from it"))
	if want := `the intermediate certificate's file holds "` + next.Subject.CommonName + `" (issuer ` + hex.EncodeToString(next.SubjectKeyId) + `), not the one serve issues from`; !has(want)(w) {
		t.Fatalf("fail/a rotated intermediate: %q, want %q", w, want)
	}
	s.reload <- struct{}{}
	var r api.IssueResponse
	if code := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": "pending.internal"}, &r).StatusCode; code != 201 {
		t.Fatalf("issue: %d", code)
	}
	if leaf := parseCert(t, r.Certificate); !slices.Equal(leaf.AuthorityKeyId, inUse.SubjectKeyId) {
		t.Fatal("ok/issuance goes on from the intermediate loaded, after a reload too")
	}
	until("fail/still after a reload", has("restart serve to issue from it"))
	write(certPath, origCert)
	until("ok/the intermediate put back", none)

	// A setting outside roles, and then a role too.
	restartOnly := strings.Replace(string(origYAML), "crl: {validity: 24h}", "crl: {validity: 12h}", 1)
	if restartOnly == string(origYAML) {
		t.Fatal("the fixture's pkid.yaml has no crl: {validity: 24h}")
	}
	write(yamlPath, []byte(restartOnly))
	until("fail/crl.validity edited", has("pkid.yaml's crl changed since serve started: a restart applies them"))
	roleToo := strings.Replace(restartOnly, "max_ttl: 168h", "max_ttl: 48h", 1)
	write(yamlPath, []byte(roleToo))
	until("fail/a role edited", func(w []string) bool {
		return len(w) == 2 && has("pkid.yaml's roles differ from those in use (added none, removed none, changed [default]): reload serve")(w)
	})
	s.reload <- struct{}{}
	until("ok/reloaded: the roles are applied, the restart still pending", func(w []string) bool {
		return len(w) == 1 && has("crl changed")(w)
	})
	if got := s.run.CA.Roles()["default"].MaxTTL; got != 48*time.Hour {
		t.Fatalf("the reload did not apply max_ttl: %s", got)
	}

	// A pkid.yaml that would not start.
	write(yamlPath, []byte(strings.Replace(roleToo, "max_ttl: 48h", "max_ttl: 2d", 1)))
	until("fail/pkid.yaml broken", func(w []string) bool {
		return len(w) == 1 && has("pkid.yaml does not load (pkid config check says why): the next start will fail")(w)
	})
	write(yamlPath, []byte(roleToo))
	until("ok/mended", func(w []string) bool { return len(w) == 1 && has("crl changed")(w) })
	write(yamlPath, origYAML)
	until("ok/pkid.yaml as started, roles as reloaded", has("pkid.yaml's roles differ from those in use (added none, removed none, changed [default])"))
	s.reload <- struct{}{}
	until("ok/all applied", none)
}
