package testutil

import (
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/config"
)

// Ports are loopback listeners a test server will use; tests listen first
// so the config can name the real ports.
type Ports struct {
	HTTPS, HTTP net.Listener
}

// Listen opens two loopback listeners on free ports.
func Listen(t testing.TB) *Ports {
	t.Helper()
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &Ports{HTTPS: a, HTTP: b}
}

// HTTPSAddr and HTTPAddr are "127.0.0.1:port".
func (p *Ports) HTTPSAddr() string { return p.HTTPS.Addr().String() }
func (p *Ports) HTTPAddr() string  { return p.HTTP.Addr().String() }

// FreeAddr returns a loopback address that was free a moment ago, for
// servers started in another process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// CADir lays out a CA directory exactly as `pkid init` does, from the
// fixture CA of keyType (no key generation, one root-key decryption for
// the root CRL), with pkid.yaml naming httpsAddr and httpAddr. edit, if
// not nil, may change the YAML text.
func CADir(t testing.TB, keyType, httpsAddr, httpAddr string, edit func(string) string) string {
	t.Helper()
	src := filepath.Join(FixtureDir(), "ca-"+keyType)
	d := t.TempDir()
	for _, sub := range []string{"certs", "secrets", "db"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cp := func(from, to string, mode os.FileMode) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, to), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	cp(filepath.Join(src, "root.crt"), "certs/root.crt", 0o644)
	cp(filepath.Join(src, "intermediate.crt"), "certs/intermediate.crt", 0o644)
	cp(filepath.Join(src, "root.key"), "secrets/root.key", 0o600)
	cp(filepath.Join(src, "intermediate.key"), "secrets/intermediate.key", 0o600)
	cp(filepath.Join(FixtureDir(), "password"), "secrets/password", 0o600)
	cp(filepath.Join(FixtureDir(), "password"), "secrets/root-password", 0o600)
	tc := CA(t, keyType)
	crl, err := ca.RootCRL(tc.Root, RootKey(t, keyType), nil, time.Now(), 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "certs/root.crl"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o644); err != nil {
		t.Fatal(err)
	}
	y := string(config.Render(config.Defaults{
		Listen: httpsAddr, ExternalURL: "https://" + httpsAddr, HTTPListen: httpAddr, PointersURL: "http://" + httpAddr,
		DNSNames: []string{"localhost"}, IPAddresses: []string{"127.0.0.1"},
	}))
	if edit != nil {
		y = edit(y)
	}
	if err := os.WriteFile(filepath.Join(d, "pkid.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// AddRole appends a role block to pkid.yaml text.
func AddRole(y, name, body string) string {
	lines := strings.Split(strings.TrimSpace(body), "\n")
	for i, l := range lines {
		lines[i] = "    " + strings.TrimSpace(l)
	}
	return strings.TrimRight(y, "\n") + "\n  " + name + ":\n" + strings.Join(lines, "\n") + "\n"
}
