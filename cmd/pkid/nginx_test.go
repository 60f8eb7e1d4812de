package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"pkid/internal/testutil"
)

// TestNginxMTLSWithCRLBundle: nginx serves a pkid certificate, requires
// pkid client certificates and checks /crl/bundle.pem (root CRL +
// intermediate CRL, since ssl_crl checks every level): a valid client gets
// 200, no certificate 400, and after revocation, a bundle refresh and a
// reload, the same client 400 with the revocation in nginx's log.
func TestNginxMTLSWithCRLBundle(t *testing.T) {
	nginx := needTool(t, "nginx")
	r := newMTLSRig(t)
	r.issue(t, "nginx.internal", "127.0.0.1")
	clientSerial := r.issue(t, "client.internal", "127.0.0.2")
	port := testutil.FreeAddr(t)
	cmd := startNginx(t, nginx, r, port, "ssl_crl "+r.path("crl.pem")+";")

	await(t, "valid client never got 200 from nginx", func() bool { return r.get(t, port, "nginx.internal", "client.internal") == 200 })
	if code := r.get(t, port, "nginx.internal", ""); code != 400 {
		t.Fatalf("no client certificate: %d, want 400", code)
	}
	r.revoke(t, clientSerial)
	r.fetchBundleListing(t, clientSerial)
	cmd.Process.Signal(syscall.SIGHUP)
	await(t, "revoked client still accepted by nginx", func() bool {
		return r.get(t, port, "nginx.internal", "client.internal") == 400
	})
	if b, _ := os.ReadFile(r.path("error.log")); !strings.Contains(string(b), "certificate revoked") {
		t.Fatal("nginx's error log lacks the revocation")
	}
}

// TestNginxMTLSAcrossRotation: after `pkid ca rotate-intermediate`, nginx
// checking /crl/bundle.pem accepts clients of both intermediates (the
// bundle holds the retired one's CRL too, and OpenSSL checks every level),
// and a revocation of a client of the retired intermediate refuses that
// client while the other is still let in.
func TestNginxMTLSAcrossRotation(t *testing.T) {
	nginx := needTool(t, "nginx")
	r := newMTLSRig(t)
	r.issue(t, "nginx.internal", "127.0.0.1")
	oldSerial := r.issue(t, "old.internal", "127.0.0.2")
	r.s.stop(t, syscall.SIGTERM)
	mustPKID(t, nil, "ca", "rotate-intermediate", "--dir", r.ca)
	r.s = serve(t, r.ca, r.https)
	r.issue(t, "new.internal", "127.0.0.3")
	if n := strings.Count(string(r.fetchBundle(t)), "BEGIN X509 CRL"); n != 3 {
		t.Fatalf("bundle of %d CRLs, want the root's and both intermediates'", n)
	}
	port := testutil.FreeAddr(t)
	cmd := startNginx(t, nginx, r, port, "ssl_crl "+r.path("crl.pem")+";")
	for _, client := range []string{"old.internal", "new.internal"} {
		await(t, client+" never got 200 from nginx", func() bool { return r.get(t, port, "nginx.internal", client) == 200 })
	}
	r.revoke(t, oldSerial)
	r.fetchBundleListing(t, oldSerial)
	cmd.Process.Signal(syscall.SIGHUP)
	await(t, "the revoked client of the retired intermediate still accepted", func() bool {
		return r.get(t, port, "nginx.internal", "old.internal") == 400
	})
	if code := r.get(t, port, "nginx.internal", "new.internal"); code != 200 {
		t.Fatalf("the new intermediate's client after the revocation: %d, want 200", code)
	}
}

// TestNginxMTLSWithOCSP: nginx checks pkid client certificates through
// pkid's OCSP (ssl_ocsp leaf: the leaf's AIA responder), so a revocation
// refuses the client at its next handshake, with no CRL refresh and no
// reload. ssl_ocsp on would check the intermediate by OCSP too, which has
// no responder (its status is in the root's CRL): README says to use leaf.
func TestNginxMTLSWithOCSP(t *testing.T) {
	nginx := needTool(t, "nginx")
	r := newMTLSRig(t)
	r.issue(t, "nginx.internal", "127.0.0.1")
	clientSerial := r.issue(t, "client.internal", "127.0.0.2")
	r.issue(t, "other.internal", "127.0.0.3")
	port := testutil.FreeAddr(t)
	startNginx(t, nginx, r, port, "ssl_ocsp leaf;")

	await(t, "valid client never got 200 from nginx", func() bool { return r.get(t, port, "nginx.internal", "client.internal") == 200 })
	r.revoke(t, clientSerial)
	// No reload: the revocation reaches OCSP within about 100 ms.
	await(t, "revoked client still accepted by nginx", func() bool {
		return r.get(t, port, "nginx.internal", "client.internal") == 400
	})
	if code := r.get(t, port, "nginx.internal", "other.internal"); code != 200 {
		t.Fatalf("the other client after the revocation: %d, want 200", code)
	}
	if b, _ := os.ReadFile(r.path("error.log")); !strings.Contains(string(b), "certificate revoked") {
		t.Fatal("nginx's error log lacks the revocation")
	}
}

// startNginx runs nginx with r's files: it serves nginx.internal's
// certificate on port, requires a client certificate under pkid's root,
// and checks its revocation as check, an nginx directive, says. It stops when the test ends, and shows its error
// log if the test failed.
func startNginx(t *testing.T, nginx string, r *mtlsRig, port, check string) *exec.Cmd {
	t.Helper()
	conf := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events {}
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s ssl;
    ssl_certificate %[1]s/nginx.internal.crt;
    ssl_certificate_key %[1]s/nginx.internal.key;
    ssl_client_certificate %[1]s/root.crt;
    ssl_verify_client on;
    ssl_verify_depth 2;
    %[3]s
    location / { return 200 "hello $ssl_client_s_dn\n"; }
  }
}
`, r.dir, port, check)
	os.WriteFile(r.path("nginx.conf"), []byte(conf), 0o644)
	cmd := exec.Command(nginx, "-p", r.dir, "-c", r.path("nginx.conf"), "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(r.path("error.log"))
			t.Logf("nginx's error log:\n%s", b)
		}
	})
	return cmd
}
