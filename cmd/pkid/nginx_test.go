package main_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/internal/testutil"
)

// TestNginxMTLSWithCRLBundle: nginx serves a pkid certificate, requires
// pkid client certificates and checks /crl/bundle.pem (root CRL +
// intermediate CRL, since ssl_crl checks every level): a valid client gets
// 200, no certificate 400, and after revocation, a bundle refresh and a
// reload, the same client 400 with the revocation in nginx's log.
func TestNginxMTLSWithCRLBundle(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			nginx = "/usr/sbin/nginx"
		} else {
			needTool(t, "nginx")
		}
	}
	d, https, plain := initCA(t)
	admin := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default", "--admin"))
	s := serve(t, d, https)
	nd := t.TempDir()
	os.Chmod(nd, 0o755)
	issue := func(name, ip string) (string, string) {
		t.Helper()
		body := fmt.Sprintf(`{"common_name":%q,"ip_addresses":[%q],"ttl":"1h"}`, name, ip)
		req, _ := http.NewRequest("POST", s.base+"/v1/issue/default", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var full struct {
			Serial      string   `json:"serial"`
			Certificate string   `json:"certificate"`
			PrivateKey  string   `json:"private_key"`
			Chain       []string `json:"chain"`
		}
		json.Unmarshal(raw, &full)
		if resp.StatusCode != 201 {
			t.Fatalf("issue %s: %d %s", name, resp.StatusCode, raw)
		}
		crt := filepath.Join(nd, name+".crt")
		key := filepath.Join(nd, name+".key")
		os.WriteFile(crt, []byte(full.Certificate+full.Chain[0]), 0o644)
		os.WriteFile(key, []byte(full.PrivateKey), 0o600)
		return full.Serial, crt
	}
	issue("nginx.internal", "127.0.0.1")
	clientSerial, clientCrt := issue("client.internal", "127.0.0.2")
	fetchBundle := func() {
		t.Helper()
		resp, err := http.Get("http://" + plain + "/crl/bundle.pem")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		os.WriteFile(filepath.Join(nd, "crl.pem"), b, 0o644)
	}
	fetchBundle()
	root, _ := os.ReadFile(filepath.Join(d, "certs", "root.crt"))
	os.WriteFile(filepath.Join(nd, "root.crt"), root, 0o644)
	port := testutil.FreeAddr(t)
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
    ssl_crl %[1]s/crl.pem;
    location / { return 200 "hello $ssl_client_s_dn\n"; }
  }
}
`, nd, port)
	os.WriteFile(filepath.Join(nd, "nginx.conf"), []byte(conf), 0o644)
	cmd := exec.Command(nginx, "-p", nd, "-c", filepath.Join(nd, "nginx.conf"), "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGQUIT); cmd.Wait() }()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	pair, err := tls.LoadX509KeyPair(clientCrt, strings.TrimSuffix(clientCrt, ".crt")+".key")
	if err != nil {
		t.Fatal(err)
	}
	get := func(withCert bool) int {
		tc := &tls.Config{RootCAs: pool, ServerName: "nginx.internal"}
		if withCert {
			tc.Certificates = []tls.Certificate{pair}
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
		resp, err := c.Get("https://" + port + "/")
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for get(true) != 200 {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(nd, "error.log"))
			t.Fatalf("valid client never got 200 from nginx:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := get(false); code != 400 {
		t.Fatalf("no client certificate: %d, want 400", code)
	}
	req, _ := http.NewRequest("POST", s.base+"/v1/revoke", strings.NewReader(fmt.Sprintf(`{"serial":%q,"reason":"keyCompromise"}`, clientSerial)))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := s.client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		fetchBundle()
		cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(200 * time.Millisecond)
		if get(true) == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revoked client still accepted by nginx")
		}
	}
	log, _ := os.ReadFile(filepath.Join(nd, "error.log"))
	if !strings.Contains(string(log), "certificate revoked") {
		t.Fatalf("nginx log lacks the revocation:\n%s", log)
	}
}
