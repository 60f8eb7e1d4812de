package main_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/ca"
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
	webroot := filepath.Join(work, "acme-challenge")
	if err := os.MkdirAll(webroot, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", h01)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.StripPrefix("/.well-known/acme-challenge/", http.FileServer(http.Dir(webroot))), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	defer hs.Close()

	cfg := filepath.Join(work, "config")
	os.WriteFile(cfg, []byte("CA=\""+s.base+"/acme/default/directory\"\nWELLKNOWN=\""+webroot+"\"\nBASEDIR=\""+work+"\"\nKEY_ALGO=prime256v1\n"), 0o644)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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
	leaf, err := ca.LoadCertificate(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "dehy.internal" {
		t.Fatalf("SANs %v", leaf.DNSNames)
	}
	sn := ca.SerialString(leaf.SerialNumber)
	if st := s.recordStatus(t, sn); st != "valid" {
		t.Fatalf("record %s: %s", sn, st)
	}
	run("--revoke", certFile)
	if st := s.recordStatus(t, sn); st != "revoked" {
		t.Fatalf("after dehydrated --revoke: %s", st)
	}
}
