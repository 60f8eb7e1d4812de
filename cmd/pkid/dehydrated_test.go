package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDehydrated gets and revokes a certificate with Debian's dehydrated:
// a bash client that builds its JWS with openssl and talks through curl,
// so it shares no code with the Go clients of the other tests. Its http-01
// files land in a webroot the test serves on the validation port.
func TestDehydrated(t *testing.T) {
	dehydrated := needTool(t, "dehydrated")
	d, https, _, h01 := initACMECA(t, map[string]string{"  hosts: {}\n": "  hosts: {dehy.internal: 127.0.0.1}\n"})
	s := serve(t, d, https)

	work := t.TempDir()
	webroot := serveWebroot(t, h01)

	cfg := filepath.Join(work, "config")
	os.WriteFile(cfg, []byte("CA=\""+s.base+"/acme/default/directory\"\nWELLKNOWN=\""+webroot+"\"\nBASEDIR=\""+work+"\"\nKEY_ALGO=prime256v1\n"), 0o644)
	run := func(args ...string) string {
		t.Helper()
		// dehydrated is bash running openssl, curl, sed and grep a few
		// hundred times a step, plus an RSA-4096 account key: 20 s on an
		// idle 2-core VM, and over 90 s seen while that VM also fuzzed.
		ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, dehydrated, append([]string{"-f", cfg}, args...)...)
		cmd.Env = append(os.Environ(), "CURL_CA_BUNDLE="+filepath.Join(d, "certs", "root.crt"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "ERROR") {
			t.Fatalf("dehydrated %s: %v\n%s\n--- pkid log ---\n%s", args[0], err, out, tail(s.logs(), 3000))
		}
		return string(out)
	}
	run("--register", "--accept-terms")
	run("--cron", "--domain", "dehy.internal")
	certFile := filepath.Join(work, "certs", "dehy.internal", "cert.pem")
	_, sn := s.issuedFor(t, certFile, "dehy.internal")
	run("--revoke", certFile)
	if st := s.recordStatus(t, sn); st != "revoked" {
		t.Fatalf("after dehydrated --revoke: %s", st)
	}
}
