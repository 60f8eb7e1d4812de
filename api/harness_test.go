package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
	"pkid/internal/testserver"
	"pkid/internal/testutil"
)

// testServer is a real pkid server on loopback with a fake clock.
type testServer struct {
	dir    string
	run    *api.Running
	clock  *ca.FakeClock
	base   string
	http   string
	client *http.Client
	stop   func()
	reload chan<- struct{} // as SIGHUP
	admin  string          // admin token
	tok    string          // default-role token
}

var ciRole = `
allowed_domains: [ci.internal]
allow_subdomains: true
allow_bare_domains: true
allowed_ip_ranges: []
allowed_uri_patterns: []
default_ttl: 1h
max_ttl: 2h
key_types: [ec-p256]
ext_key_usage: [client_auth]
renewal: {enabled: false, max_age: 1h}
revocation_pointers: false
acme: {enabled: false, challenges: [], require_eab: false}`

func startServer(t testing.TB, dir string, ports *testutil.Ports) *testServer {
	t.Helper()
	return startServerAt(t, dir, ports, time.Now())
}

// startServerAt starts a server whose fake clock reads at.
func startServerAt(t testing.TB, dir string, ports *testutil.Ports, at time.Time) *testServer {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "pkid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clk := ca.NewFakeClock(at)
	srv, err := testserver.Start(cfg, ports, clk)
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	run := srv.Run
	ctx := context.Background()
	ts := &testServer{dir: dir, run: run, clock: clk, base: srv.Base, http: srv.HTTP, client: srv.Client, reload: srv.Reload}
	ts.stop = func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("serve returned %v", err)
		}
	}
	roles := cfg.Roles
	ts.admin, _, err = api.CreateToken(ctx, run.Store, clk.Now(), roles, api.TokenOptions{Name: "admin", Roles: []string{"default"}, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	ts.tok, _, err = api.CreateToken(ctx, run.Store, clk.Now(), roles, api.TokenOptions{Name: "ci-main", Roles: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// shared is the package's one server; tests that need their own start one.
var shared *testServer

func TestMain(m *testing.M) {
	t := &mainTB{}
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		y = testutil.AddRole(y, "metered", strings.NewReplacer("ci.internal", "metered.internal", "acme: {", "rate_limit: {certificates: 2, per: 1m}\nacme: {").Replace(ciRole))
		y = testutil.AddRole(y, "edonly", strings.NewReplacer("ci.internal", "ed.internal", "key_types: [ec-p256]", "key_types: [ed25519, ec-p384]").Replace(ciRole))
		return testutil.AddRole(y, "ci", ciRole)
	})
	shared = startServer(t, dir, ports)
	code := m.Run()
	shared.stop()
	t.cleanup()
	os.Exit(code)
}

// mainTB lets helpers that take testing.TB run in TestMain.
type mainTB struct {
	testing.TB
	cleanups []func()
	dirs     []string
}

func (m *mainTB) Helper()                   {}
func (m *mainTB) Fatal(args ...any)         { panic(args) }
func (m *mainTB) Fatalf(f string, a ...any) { panic(f) }
func (m *mainTB) Errorf(f string, a ...any) { panic(f) }
func (m *mainTB) Cleanup(f func())          { m.cleanups = append(m.cleanups, f) }
func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp("", "pkid-test")
	if err != nil {
		panic(err)
	}
	m.dirs = append(m.dirs, d)
	return d
}
func (m *mainTB) cleanup() {
	for _, f := range m.cleanups {
		f()
	}
	for _, d := range m.dirs {
		os.RemoveAll(d)
	}
}

// do sends a request and decodes the JSON answer into out (if not nil).
func (s *testServer) do(t testing.TB, method, path, token string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp
}

func csrPEM(t testing.TB, key crypto.Signer, cn string, dns ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func parseCert(t testing.TB, p string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatalf("no PEM in %q", p)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *testServer) verify(t testing.TB, r *api.IssueResponse, eku x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	leaf := parseCert(t, r.Certificate)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(parseCert(t, r.Chain[1]))
	inters.AddCert(parseCert(t, r.Chain[0]))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{eku}, CurrentTime: s.clock.Now()}); err != nil {
		t.Fatalf("chain does not verify: %v", err)
	}
	return leaf
}

func decode(t testing.TB, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// servedCert is the certificate the server presents in a new TLS
// handshake, verified against the root on the server's clock.
func (s *testServer) servedCert(t testing.TB) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.base, "https://"), &tls.Config{RootCAs: s.client.Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "localhost", Time: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// advance moves the server's clock and waits until the server's own
// certificate is valid on it again (it renews at two thirds of its life),
// so later requests verify whatever the test order.
func (s *testServer) advance(t testing.TB, d time.Duration) {
	t.Helper()
	s.clock.Advance(d)
	deadline := time.Now().Add(testutil.DutyWait)
	for {
		c := s.run.ServerCert.Current()
		if now := s.clock.Now(); c.NotAfter.After(now.Add(time.Minute)) && !c.NotBefore.After(now) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("server certificate not renewed for the moved clock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
