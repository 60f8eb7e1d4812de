package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"pkid/internal/testutil"
)

// TestHAProxyMTLSWithCRLBundle runs the HAProxy line the README gives
// (ca-file root, verify required, crl-file /crl/bundle.pem — HAProxy, like
// nginx, checks a CRL at every level): a pkid client certificate gets 200,
// none is refused in the handshake, and after a revocation, a bundle
// refresh and a reload (SIGUSR2 to the master) the revoked client is
// refused while another pkid client still gets 200, so the refusal is the
// revocation and not a broken reload.
func TestHAProxyMTLSWithCRLBundle(t *testing.T) {
	haproxy := needTool(t, "haproxy")
	r := newMTLSRig(t)
	r.issue(t, "haproxy.internal", "127.0.0.1")
	revoked := r.issue(t, "client.internal", "127.0.0.2")
	r.issue(t, "other.internal", "127.0.0.3")
	addr := testutil.FreeAddr(t)
	conf := fmt.Sprintf(`global
  log stdout format raw local0 info
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %[2]s ssl crt %[1]s/haproxy.internal.pem ca-file %[1]s/root.crt verify required crl-file %[1]s/crl.pem
  http-request return status 200 content-type text/plain lf-string "hello %%[ssl_c_s_dn]\n"
`, r.dir, addr)
	os.WriteFile(r.path("haproxy.cfg"), []byte(conf), 0o644)
	if out, err := exec.Command(haproxy, "-c", "-f", r.path("haproxy.cfg")).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	var log testutil.SyncBuffer
	// -W: master-worker, so SIGUSR2 reloads the configuration and the CRL
	// file; -db: in the foreground.
	cmd := exec.Command(haproxy, "-W", "-db", "-f", r.path("haproxy.cfg"))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy's log:\n%s", log.String())
		}
	})

	await(t, "valid client never got 200 from haproxy", func() bool { return r.get(t, addr, "haproxy.internal", "client.internal") == 200 })
	if code := r.get(t, addr, "haproxy.internal", ""); code != -1 {
		t.Fatalf("no client certificate: %d, want the handshake refused", code)
	}
	r.revoke(t, revoked)
	r.fetchBundleListing(t, revoked)
	cmd.Process.Signal(syscall.SIGUSR2)
	await(t, "revoked client still accepted by haproxy", func() bool {
		return r.get(t, addr, "haproxy.internal", "client.internal") == -1
	})
	if code := r.get(t, addr, "haproxy.internal", "other.internal"); code != 200 {
		t.Fatalf("a valid client after the reload: %d, want 200", code)
	}
}
