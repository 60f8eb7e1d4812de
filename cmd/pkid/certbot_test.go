package main_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/ca"
)

// TestCertbot gets, force-renews and revokes a certificate with Debian's
// certbot against a built pkid: http-01 on a loopback port, the name mapped
// to 127.0.0.1 with acme.hosts.
func TestCertbot(t *testing.T) {
	certbot := needTool(t, "certbot")
	d, https, _, port := initACMECA(t, map[string]string{"  hosts: {}\n": "  hosts: {certbot.internal: 127.0.0.1}\n"})
	_, p, _ := net.SplitHostPort(port)
	s := serve(t, d, https)

	work := t.TempDir()
	common := []string{"--server", s.base + "/acme/default/directory", "--config-dir", work + "/config", "--work-dir", work + "/work", "--logs-dir", work + "/logs", "--non-interactive"}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, certbot, append(args, common...)...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+filepath.Join(d, "certs", "root.crt"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(work, "logs", "letsencrypt.log"))
			os.WriteFile(filepath.Join(os.TempDir(), "pkid-certbot-last.log"), log, 0o644)
			t.Fatalf("certbot %s: %v\n%s\n--- certbot log tail ---\n%s\n--- pkid log ---\n%s", args[0], err, out, tail(string(log), 4000), tail(s.logs(), 3000))
		}
		return string(out)
	}
	run("certonly", "--standalone", "--http-01-port", p, "--http-01-address", "127.0.0.1", "-d", "certbot.internal", "--agree-tos", "--register-unsafely-without-email", "--cert-name", "demo")
	live := filepath.Join(work, "config", "live", "demo", "cert.pem")
	first, err := ca.LoadCertificate(live)
	if err != nil {
		t.Fatal(err)
	}
	run("renew", "--force-renewal", "--no-random-sleep-on-renew", "--cert-name", "demo", "--standalone", "--http-01-port", p, "--http-01-address", "127.0.0.1")
	second, err := ca.LoadCertificate(live)
	if err != nil {
		t.Fatal(err)
	}
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("certbot renew --force-renewal kept the same certificate")
	}
	run("revoke", "--cert-path", live, "--reason", "superseded", "--no-delete-after-revoke")
	for sn, want := range map[string]int{ca.SerialString(first.SerialNumber): 200, ca.SerialString(second.SerialNumber): 200} {
		if code := s.status(t, "/v1/certs/"+sn); code != want {
			t.Fatalf("record %s: %d", sn, code)
		}
	}
	resp, err := s.client.Get(s.base + "/v1/certs/" + ca.SerialString(second.SerialNumber))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	if !strings.Contains(string(b[:n]), `"status":"revoked"`) {
		t.Fatalf("after certbot revoke: %s", b[:n])
	}
	// ACME's audit lines are the REST API's: same fields, a request ID (the
	// challenge POST's for a validation, which runs after it).
	seen := map[string]bool{}
	for _, l := range auditLines(s.logs()) {
		if strings.HasPrefix(l.Requester, "acme:") && l.RequestID != "" && (l.Event == "issue" && l.Via == "acme" && len(l.Names) > 0 || l.Event == "revoke" || strings.HasPrefix(l.Event, "acme.")) {
			seen[l.Event+" "+l.Outcome+" "+l.Serial] = true
		}
	}
	for _, want := range []string{"issue issued " + ca.SerialString(first.SerialNumber), "issue issued " + ca.SerialString(second.SerialNumber), "revoke revoked " + ca.SerialString(second.SerialNumber),
		"acme.account.create accepted ", "acme.validate valid "} {
		if !seen[want] {
			t.Fatalf("no ACME audit line %q with a request ID in %v", want, seen)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
