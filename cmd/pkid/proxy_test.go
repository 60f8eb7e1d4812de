package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"pkid/ca"
)

// connectProxy is an HTTP proxy that tunnels CONNECT requests to target,
// whatever host they name, as a corporate proxy that can resolve the CA's
// internal name would. It records the hosts asked for.
type connectProxy struct {
	target string
	mu     sync.Mutex
	asked  []string
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.asked = append(p.asked, r.Host)
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	down, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	go func() { io.Copy(up, down); up.Close() }()
	io.Copy(down, up)
	down.Close()
}

func (p *connectProxy) hosts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.asked)
}

// TestThroughProxy: on a network where the CA is reached through an HTTP
// proxy (HTTPS_PROXY), the client commands use it, as curl and certbot do:
// bootstrap, issue and mTLS renewal tunnel through it to a CA name only
// the proxy can resolve. TLS, the root pin and the client certificate are
// end to end through the tunnel.
func TestThroughProxy(t *testing.T) {
	d, https, _ := initCA(t, "--dns", "localhost", "--dns", "ca.pkid-proxy.test", "--ip", "127.0.0.1")
	serve(t, d, https)
	proxy := &connectProxy{target: https}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(pl, proxy)
	defer pl.Close()
	_, port, _ := net.SplitHostPort(https)
	caHost := "ca.pkid-proxy.test:" + port
	caURL := "https://" + caHost
	home := t.TempDir()
	env := []string{"PKID_HOME=" + home, "HTTPS_PROXY=http://" + pl.Addr().String(), "https_proxy=", "NO_PROXY=", "no_proxy="}

	root, _ := ca.LoadCertificate(filepath.Join(d, "certs/root.crt"))
	sum := sha256.Sum256(root.Raw)
	mustPKID(t, env, "ca", "bootstrap", "--ca-url", caURL, "--fingerprint", hex.EncodeToString(sum[:]))
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default", "--name", "behind-proxy"))
	crt, key := filepath.Join(home, "svc.crt"), filepath.Join(home, "svc.key")
	mustPKID(t, env, "cert", "issue", "--ca-url", caURL, "--token", tok, "--role", "default", "--cn", "svc.internal", "--ttl", "1h", "--out", crt, "--key-out", key)
	first, err := ca.LoadCertificate(crt)
	if err != nil {
		t.Fatal(err)
	}
	mustPKID(t, env, "cert", "renew", "--ca-url", caURL, "--cert", crt, "--key", key)
	renewed, err := ca.LoadCertificate(crt)
	if err != nil || renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("renewal through the proxy did not replace %s: %v", crt, err)
	}
	if got := proxy.hosts(); len(got) < 3 || slices.ContainsFunc(got, func(h string) bool { return h != caHost }) {
		t.Fatalf("the proxy was asked for %v; want bootstrap, issue and renew, all to %s", got, caHost)
	}
}
