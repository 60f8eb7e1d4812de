package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"pkid/internal/testutil"
)

// TestRateLimitSurvivesCrash: a role's rate limit is counted in the store,
// not in the serving process: a credential that has used its allowance is
// still refused after `pkid serve` is SIGKILLed and started again on the
// same files, while another credential is not; serve's timer deletes a
// count once it is whole again, and only then.
func TestRateLimitSurvivesCrash(t *testing.T) {
	d, https, _ := initCA(t)
	cfgPath := filepath.Join(d, "pkid.yaml")
	raw, _ := os.ReadFile(cfgPath)
	y := strings.Replace(string(raw), "    max_ttl: 168h\n", "    max_ttl: 168h\n    rate_limit: {certificates: 2, per: 1h}\n", 1)
	if y == string(raw) {
		t.Fatal("the rate limit was not added")
	}
	y = testutil.AddRole(y, "brief", "allowed_domains: [brief.internal]\nallow_subdomains: true\ndefault_ttl: 1h\nmax_ttl: 1h\nkey_types: [ec-p256]\next_key_usage: [server_auth]\nrate_limit: {certificates: 1, per: 1s}")
	os.WriteFile(cfgPath, []byte(y), 0o644)
	token := func(name string) string {
		return strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfgPath, "--role", "default", "--name", name))
	}
	ci, other := token("ci-loop"), token("ci-other")
	root := filepath.Join(d, "certs", "root.crt")
	s := serve(t, d, https)
	issue := func(tok, cn string) result {
		out := filepath.Join(t.TempDir(), "c.pem")
		return pkid(t, nil, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", tok, "--role", "default", "--cn", cn, "--out", out, "--key-out", out+".key")
	}
	for i, cn := range []string{"a.internal", "b.internal"} {
		if r := issue(ci, cn); r.code != 0 {
			t.Fatalf("ok/certificate %d of 2: %s", i+1, r.stderr)
		}
	}
	// The next is allowed half an hour after the first, less the seconds
	// the two issuances took (a loaded machine has taken more than one).
	refused := regexp.MustCompile(`role "default" allows 2 certificates per 1h0m0s to one credential, and token:ci-loop has had them; the next is allowed in (30m0s|29m[0-5]?[0-9]s)`)
	if r := issue(ci, "c.internal"); r.code != 1 || !refused.MatchString(r.stderr) {
		t.Fatalf("fail/third certificate: exit %d %s", r.code, r.stderr)
	}
	s.stop(t, syscall.SIGKILL)
	s = serve(t, d, https)
	if r := issue(ci, "c.internal"); r.code != 1 || !strings.Contains(r.stderr, "token:ci-loop has had them") {
		t.Fatalf("fail/after SIGKILL and restart the spent allowance is back: exit %d %s", r.code, r.stderr)
	}
	if r := issue(other, "d.internal"); r.code != 0 {
		t.Fatalf("ok/another credential after the restart: %s", r.stderr)
	}

	// serve's timer deletes counts that are whole again: brief's a second
	// after its certificate, default's not for half an hour.
	brief := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfgPath, "--role", "brief", "--name", "ci-brief"))
	out := filepath.Join(t.TempDir(), "b.pem")
	mustPKID(t, nil, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", brief, "--role", "brief", "--cn", "a.brief.internal", "--out", out, "--key-out", out+".key")
	waitLog(t, s, `"msg":"pruned whole rate-limit allowances","whole_before":`)
	for _, line := range strings.Split(s.logs(), "\n") {
		if strings.Contains(line, "pruned whole rate-limit allowances") && !strings.Contains(line, `"count":1}`) {
			t.Fatalf("the prune should have deleted brief's count alone: %s", line)
		}
	}
}
