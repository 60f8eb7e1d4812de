package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

var pkidBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pkid-bin")
	if err != nil {
		panic(err)
	}
	pkidBin = filepath.Join(dir, "pkid")
	if out, err := exec.Command("go", "build", "-o", pkidBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build pkid: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needTool returns the path of an outside tool, looked for on PATH, then
// where Debian installs daemons (nginx, HAProxy) outside a user's PATH;
// with PKID_E2E=1 a missing tool fails the test instead of skipping it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, serr := exec.LookPath(filepath.Join(dir, name)); serr == nil {
			return p
		}
	}
	if os.Getenv("PKID_E2E") == "1" {
		t.Fatalf("%s is required with PKID_E2E=1: %v", name, err)
	}
	t.Skipf("%s not installed", name)
	return ""
}

type result struct {
	stdout, stderr string
	code           int
}

func pkid(t *testing.T, env []string, args ...string) result {
	t.Helper()
	var o bytes.Buffer
	r := pkidTo(t, &o, env, args...)
	r.stdout = o.String()
	return r
}

// pkidTo runs pkid with its standard output on stdout.
func pkidTo(t *testing.T, stdout io.Writer, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(pkidBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var e bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{"", e.String(), code}
}

func mustPKID(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := pkid(t, env, args...)
	if r.code != 0 {
		t.Fatalf("pkid %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// initCA runs pkid init with free ports and returns the directory and the
// HTTPS and HTTP addresses.
func initCA(t *testing.T, extra ...string) (string, string, string) {
	t.Helper()
	d := filepath.Join(t.TempDir(), "ca")
	https, plain := testutil.FreeAddr(t), testutil.FreeAddr(t)
	mustPKID(t, nil, append([]string{"init", "--dir", d, "--name", "Test CA", "--listen", https, "--http-listen", plain}, extra...)...)
	return d, https, plain
}

// initACMECA is initCA with acme.http01_port set to a free loopback port,
// whose address it returns (the test answers http-01 there), and each line
// of the config named in lines replaced by its value.
func initACMECA(t *testing.T, lines map[string]string) (dir, https, plain, h01 string) {
	t.Helper()
	dir, https, plain = initCA(t)
	h01 = testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(h01)
	lines["  http01_port: 80\n"] = "  http01_port: " + port + "\n"
	cfg := filepath.Join(dir, "pkid.yaml")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	y := string(raw)
	for old, repl := range lines {
		if !strings.Contains(y, old) {
			t.Fatalf("pkid.yaml has no line %q", old)
		}
		y = strings.Replace(y, old, repl, 1)
	}
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, https, plain, h01
}

type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
	base   string
	client *http.Client
	log    *bytes.Buffer
	mu     *sync.Mutex
}

// startServer starts cmd, a pkid serve (or a script that execs one), and
// stops it when the test ends: SIGTERM, which must end it within 15 s
// (serve's shutdown grace is 10 s), then SIGKILL. The channel closes once
// it has exited.
func startServer(t *testing.T, cmd *exec.Cmd) chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s did not exit within 15 s of SIGTERM", cmd.Path)
		}
	})
	return exited
}

// serve starts `pkid serve` and waits until /healthz answers over TLS
// trusted by the CA's root.
func serve(t *testing.T, dir, httpsAddr string) *server {
	t.Helper()
	return serveEnv(t, dir, httpsAddr, nil)
}

// serveEnv is serve with extra environment variables for the server.
func serveEnv(t *testing.T, dir, httpsAddr string, env []string) *server {
	t.Helper()
	cmd := exec.Command(pkidBin, "serve", "--config", filepath.Join(dir, "pkid.yaml"))
	cmd.Env = append(os.Environ(), env...)
	log := &bytes.Buffer{}
	mu := &sync.Mutex{}
	cmd.Stderr = lockedWriter{log, mu}
	exited := startServer(t, cmd)
	client := caClient(t, dir)
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 32
	s := &server{cmd: cmd, exited: exited, base: "https://" + httpsAddr, log: log, mu: mu, client: client}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := s.client.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("pkid serve exited: %s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pkid serve not ready: %v\n%s", err, s.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caClient is an HTTPS client that trusts the root of the CA in dir.
func caClient(t *testing.T, dir string) *http.Client {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(dir, "certs", "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// issueCert runs `pkid cert issue` against s for cn under role default
// with tok, trusting root, and returns the certificate file, its key file
// and the certificate.
func issueCert(t *testing.T, s *server, root, tok, cn string) (string, string, *x509.Certificate) {
	t.Helper()
	crt := filepath.Join(t.TempDir(), cn+".crt")
	mustPKID(t, nil, "cert", "issue", "--ca-url", s.base, "--root", root, "--token", tok, "--role", "default", "--cn", cn, "--out", crt, "--key-out", crt+".key")
	c, err := ca.LoadCertificate(crt)
	if err != nil {
		t.Fatal(err)
	}
	return crt, crt + ".key", c
}

func newCSR(t testing.TB, name string) (string, []byte) {
	t.Helper()
	key := testutil.LeafKey(t, "ec-p256")
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// sign posts a CSR; it returns the serial, or "" with the error.
func (s *server) sign(ctx context.Context, token, csr string) (string, error) {
	body, _ := json.Marshal(map[string]string{"csr": csr})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/v1/sign/default", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 201 {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var out struct {
		Serial      string `json:"serial"`
		Certificate string `json:"certificate"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Certificate == "" {
		return "", fmt.Errorf("bad answer: %v", err)
	}
	return out.Serial, nil
}

// revokeAs revokes serial with an admin token; nil means the server said
// it is revoked.
func (s *server) revokeAs(ctx context.Context, admin, serial, reason string) error {
	body, _ := json.Marshal(map[string]string{"serial": serial, "reason": reason})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/v1/revoke", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revoke %s: HTTP %d: %s", serial, resp.StatusCode, raw)
	}
	return nil
}

func (s *server) status(t *testing.T, path string) int {
	t.Helper()
	resp, err := s.client.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// recordStatus is the "status" of the certificate record for serial
// (valid, revoked or expired), failing the test if there is none.
func (s *server) recordStatus(t *testing.T, serial string) string {
	t.Helper()
	return s.record(t, serial).Status
}

// recordReason is the revocation "reason" of the record for serial.
func (s *server) recordReason(t *testing.T, serial string) string {
	t.Helper()
	return s.record(t, serial).Reason
}

// certRecord is the part of GET /v1/certs/{serial} the tests read.
type certRecord struct {
	Status, Reason string
	Replaces       string `json:"replaces"`
	ReplacedBy     string `json:"replaced_by"`
}

func (s *server) record(t *testing.T, serial string) (rec certRecord) {
	t.Helper()
	resp, err := s.client.Get(s.base + "/v1/certs/" + serial)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("record %s: HTTP %d, %v", serial, resp.StatusCode, err)
	}
	return rec
}

// stop signals the server and waits until it has exited.
func (s *server) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("pkid serve did not exit after %s", sig)
	}
	s.client.CloseIdleConnections()
}

// serveWebroot serves a fresh directory's files as http-01 answers on addr
// (the CA's validation port) until the test ends, for clients that write
// their challenge files into a webroot (dehydrated, uacme), and returns
// the directory.
func serveWebroot(t *testing.T, addr string) string {
	t.Helper()
	webroot := filepath.Join(t.TempDir(), "acme-challenge")
	if err := os.MkdirAll(webroot, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.StripPrefix("/.well-known/acme-challenge/", http.FileServer(http.Dir(webroot))), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return webroot
}

// issuedFor loads the certificate a client saved in certFile, checks that
// it names exactly name and that the CA recorded it as valid, and returns
// its serial.
func (s *server) issuedFor(t *testing.T, certFile, name string) (*x509.Certificate, string) {
	t.Helper()
	leaf, err := ca.LoadCertificate(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
		t.Fatalf("SANs %v, want [%s]", leaf.DNSNames, name)
	}
	sn := ca.SerialString(leaf.SerialNumber)
	if st := s.recordStatus(t, sn); st != "valid" {
		t.Fatalf("record %s: %s", sn, st)
	}
	return leaf, sn
}
