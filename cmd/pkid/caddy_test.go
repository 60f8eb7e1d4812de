package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
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

	"golang.org/x/crypto/ocsp"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestCaddy runs Debian's Caddy 2.6, unchanged, against a built pkid: one
// site gets its certificate through http-01 and another, with an RSA key,
// through tls-alpn-01, each on Caddy's own loopback ports, with an account
// bound by `pkid acme eab create` (the role requires it). Caddy staples
// pkid's OCSP answers; it staples none whose nextUpdate is after the
// certificate's notAfter, so the role's certificates live 30 minutes, less
// than an answer's hour. Then one certificate is revoked: Caddy, restarted,
// learns it from OCSP and replaces it through ACME, and keeps the other.
func TestCaddy(t *testing.T) {
	caddy := needTool(t, "caddy")
	const httpSite, alpnSite = "caddy.internal", "alpn.caddy.internal"
	alpn := testutil.FreeAddr(t)
	_, alpnPort, _ := net.SplitHostPort(alpn)
	d, https, _, h01 := initACMECA(t, map[string]string{
		"  hosts: {}\n":           "  hosts: {" + httpSite + ": 127.0.0.1, " + alpnSite + ": 127.0.0.1}\n",
		"  tlsalpn01_port: 443\n": "  tlsalpn01_port: " + alpnPort + "\n",
		"    default_ttl: 24h\n":  "    default_ttl: 30m\n",
		"require_eab: false}":     "require_eab: true}",
	})
	_, httpPort, _ := net.SplitHostPort(h01)
	// One binding for Caddy's one account with this CA (both sites share
	// it, and it survives the restart in Caddy's storage).
	kid, mac, _ := strings.Cut(strings.TrimSpace(mustPKID(t, nil, "acme", "eab", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default")), " ")
	s := serve(t, d, https)
	root := filepath.Join(d, "certs", "root.crt")

	work := t.TempDir()
	issuer := func(disable string) string {
		return "\t\tissuer acme {\n\t\t\tdir " + s.base + "/acme/default/directory\n\t\t\ttrusted_roots " + root + "\n\t\t\teab " + kid + " " + mac + "\n\t\t\t" + disable + "\n\t\t}\n"
	}
	caddyfile := filepath.Join(work, "Caddyfile")
	os.WriteFile(caddyfile, []byte(`{
	admin off
	storage file_system `+filepath.Join(work, "storage")+`
	http_port `+httpPort+`
	https_port `+alpnPort+`
	default_bind 127.0.0.1
	servers {
		protocols h1 h2
	}
	skip_install_trust
}
`+httpSite+` {
	tls {
`+issuer("disable_tlsalpn_challenge")+`	}
	respond "hello from `+httpSite+`"
}
`+alpnSite+` {
	tls {
		key_type rsa2048
`+issuer("disable_http_challenge")+`	}
	respond "hello from `+alpnSite+`"
}
`), 0o644)

	rootPEM, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	log := &bytes.Buffer{}
	logMu := &sync.Mutex{}
	logs := func() string { logMu.Lock(); defer logMu.Unlock(); return log.String() }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- caddy log ---\n%s\n--- pkid log ---\n%s", tail(logs(), 6000), tail(s.logs(), 3000))
		}
	})
	var cmd *exec.Cmd
	var exited chan struct{}
	start := func() {
		t.Helper()
		cmd = exec.Command(caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
		// Caddy's autosaved config and data go to the test's directory,
		// not the user's.
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(work, "config"), "XDG_DATA_HOME="+filepath.Join(work, "data"), "HOME="+work)
		cmd.Stdout, cmd.Stderr = lockedWriter{log, logMu}, lockedWriter{log, logMu}
		exited = startServer(t, cmd)
	}
	served := func(name, not string) *x509.Certificate {
		t.Helper()
		return servedStapled(t, "caddy", exited, alpn, name, roots, not)
	}

	start()
	first := map[string]*x509.Certificate{}
	for _, name := range []string{httpSite, alpnSite} {
		leaf := served(name, "")
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name || leaf.NotAfter.Sub(leaf.NotBefore) != 31*time.Minute {
			t.Fatalf("%s: SANs %v, validity %s, want [%s] and the role's 30 m (+1 m skew)", name, leaf.DNSNames, leaf.NotAfter.Sub(leaf.NotBefore), name)
		}
		if st := s.recordStatus(t, ca.SerialString(leaf.SerialNumber)); st != "valid" {
			t.Fatalf("%s: record %s", name, st)
		}
		first[name] = leaf
		if body := caddyGet(t, alpn, name, roots); body != "hello from "+name {
			t.Fatalf("%s answered %q", name, body)
		}
	}
	if first[alpnSite].PublicKeyAlgorithm != x509.RSA || first[httpSite].PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("keys %s and %s, want Caddy's ECDSA default and the RSA key_type", first[httpSite].PublicKeyAlgorithm, first[alpnSite].PublicKeyAlgorithm)
	}

	revoked := ca.SerialString(first[httpSite].SerialNumber)
	mustPKID(t, nil, "cert", "revoke", "--config", filepath.Join(d, "pkid.yaml"), "--reason", "keyCompromise", revoked)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("caddy did not exit within 15 s of SIGTERM")
	}
	// Caddy keeps a staple until half its validity has passed (up to 15
	// minutes here) before it asks again; forget the kept ones, as that
	// time passing would.
	if err := os.RemoveAll(filepath.Join(work, "storage", "ocsp")); err != nil {
		t.Fatal(err)
	}
	start()
	replaced := served(httpSite, revoked)
	if st := s.recordStatus(t, ca.SerialString(replaced.SerialNumber)); st != "valid" {
		t.Fatalf("replacement record %s", st)
	}
	if kept := served(alpnSite, ""); !kept.Equal(first[alpnSite]) {
		t.Fatalf("Caddy replaced %s's certificate too (%x), which was neither revoked nor due", alpnSite, kept.SerialNumber)
	}
	if !strings.Contains(logs(), "OCSP status for managed certificate is REVOKED") {
		t.Fatal("Caddy's log does not say it replaced a revoked certificate")
	}
	// keyCompromise: Caddy sets the key aside, and pkid would sign no CSR
	// with it again.
	if bytes.Equal(replaced.RawSubjectPublicKeyInfo, first[httpSite].RawSubjectPublicKeyInfo) {
		t.Fatal("the replacement carries the compromised key")
	}
}

// servedStapled waits until the server at addr (Caddy, Apache) serves
// name a certificate that chains to roots, other than not (a serial; ""
// for any), with a good OCSP staple that does not outlive it, and returns
// it. It gives up at once if the server exits.
func servedStapled(t *testing.T, server string, exited <-chan struct{}, addr, name string, roots *x509.CertPool, not string) *x509.Certificate {
	t.Helper()
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(100 * time.Millisecond) {
		leaf, staple, err := handshake(addr, name, roots)
		if err == nil && ca.SerialString(leaf.SerialNumber) != not {
			if staple == nil {
				err = errors.New("no OCSP staple")
			} else if r, perr := ocsp.ParseResponseForCert(staple, leaf, nil); perr != nil || r.Status != ocsp.Good || r.NextUpdate.After(leaf.NotAfter) {
				t.Fatalf("%s: staple %+v, %v (notAfter %s)", name, r, perr, leaf.NotAfter)
			} else {
				return leaf
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited", server)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve %s a new certificate from pkid with a staple: %v", server, name, err)
		}
	}
}

// handshake completes a TLS handshake with the server at addr for name,
// verified against roots, and returns the leaf and the OCSP staple.
func handshake(addr, name string, roots *x509.CertPool) (*x509.Certificate, []byte, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0], st.OCSPResponse, nil
}

// caddyGet fetches https://name/ from Caddy at addr.
func caddyGet(t *testing.T, addr, name string, roots *x509.CertPool) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + name + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
