package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/internal/testutil"
)

// TestServeReloadsRoles: SIGHUP makes a running `pkid serve` re-read
// pkid.yaml's roles without a restart: a role added there issues, a role
// tightened there refuses what it no longer allows, and a change outside
// roles is named as waiting for a restart. A file that no longer loads
// changes nothing and the server keeps serving the roles it has.
func TestServeReloadsRoles(t *testing.T) {
	d, https, _ := initCA(t)
	cfgPath := filepath.Join(d, "pkid.yaml")
	s := serve(t, d, https)
	root := filepath.Join(d, "certs", "root.crt")
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfgPath, "--role", "default", "--admin", "--name", "ops"))
	issue := func(tok, role, cn, ttl string) result {
		out := filepath.Join(t.TempDir(), "c.pem")
		return pkid(t, nil, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", tok, "--role", role, "--cn", cn, "--ttl", ttl, "--out", out, "--key-out", out+".key")
	}
	if r := issue(tok, "late", "a.late.internal", "1h"); r.code != 1 || !strings.Contains(r.stderr, `unknown role "late"`) {
		t.Fatalf("before the reload: exit %d %s", r.code, r.stderr)
	}

	raw, _ := os.ReadFile(cfgPath)
	y := strings.Replace(string(raw), "    max_ttl: 168h\n", "    max_ttl: 30h\n", 1)
	y = strings.Replace(y, "crl: {validity: 24h}", "crl: {validity: 12h}", 1)
	y = testutil.AddRole(y, "late", `
allowed_domains: [late.internal]
allow_subdomains: true
allowed_ip_ranges: []
allowed_uri_patterns: []
default_ttl: 1h
max_ttl: 1h
key_types: [ec-p256]
ext_key_usage: [server_auth]
renewal: {enabled: false, max_age: 1h}
revocation_pointers: true
acme: {enabled: false, challenges: [], require_eab: false}`)
	if y == string(raw) || !strings.Contains(y, "max_ttl: 30h") || !strings.Contains(y, "validity: 12h") {
		t.Fatal("the config edits did not apply")
	}
	os.WriteFile(cfgPath, []byte(y), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "roles reloaded")
	for _, want := range []string{`"added":["late"]`, `"changed":["default"]`, `"removed":[]`, `"keys":["crl"]`, "take effect at the next restart"} {
		if !strings.Contains(s.logs(), want) {
			t.Errorf("serve's log lacks %s:\n%s", want, tail(s.logs(), 3000))
		}
	}
	// Token creation goes through the admin socket to the running server,
	// which now knows the role.
	lateTok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfgPath, "--role", "late", "--name", "late-ci"))
	if r := issue(lateTok, "late", "a.late.internal", "1h"); r.code != 0 {
		t.Fatalf("ok/the added role issues: %s", r.stderr)
	}
	if r := issue(tok, "default", "b.internal", "100h"); r.code != 1 || !strings.Contains(r.stderr, "max_ttl of 30h") {
		t.Fatalf("fail/the tightened role: exit %d %s", r.code, r.stderr)
	}

	os.WriteFile(cfgPath, []byte(y+"\nbogus: 1\n"), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "reload refused; the roles in use stay")
	if !strings.Contains(s.logs(), "unknown key bogus") {
		t.Errorf("the refusal does not say why:\n%s", tail(s.logs(), 2000))
	}
	if r := issue(lateTok, "late", "c.late.internal", "1h"); r.code != 0 {
		t.Fatalf("ok/the roles in use stay after a refused reload: %s", r.stderr)
	}
	select {
	case <-s.exited:
		t.Fatal("serve exited")
	default:
	}
}

// waitLog waits until serve's log holds want.
func waitLog(t *testing.T, s *server, want string) {
	t.Helper()
	for deadline := time.Now().Add(testutil.DutyWait); !strings.Contains(s.logs(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve never logged %q:\n%s", want, tail(s.logs(), 3000))
		}
	}
}
