package testutil

import (
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// HTTPSAddr is the HTTPS listener's address, "127.0.0.1:port".
func (p *Ports) HTTPSAddr() string { return p.HTTPS.Addr().String() }

// HTTPAddr is the plain-HTTP listener's address.
func (p *Ports) HTTPAddr() string { return p.HTTP.Addr().String() }

// FreeAddr returns a loopback address that was free a moment ago, for
// servers started later or in another process (a pkid serve, an http-01
// responder bound and closed test after test). Its port is outside the
// kernel's ephemeral range: a port from that range, once released, can be
// handed to any other test's listener or outgoing connection, which the
// suite's packages, running side by side, make by the thousand.
//
// It never returns a port twice in one process: the port is closed again
// when FreeAddr returns, so without that a parallel test, or the same
// test's next address, could be given it before the first caller's server
// binds it. (A pkid serve in the suite once found its http_listen port
// taken; this is one way that happens.)
func FreeAddr(t testing.TB) string {
	t.Helper()
	lo, hi := nonEphemeralRange()
	for range 200 {
		port := lo + rand.IntN(hi-lo+1)
		if _, dup := handedOut.LoadOrStore(port, true); dup {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken: try another
		}
		l.Close()
		return l.Addr().String()
	}
	t.Fatalf("no free loopback port in %d-%d", lo, hi)
	return ""
}

// handedOut holds the ports FreeAddr has returned in this process.
var handedOut sync.Map

// nonEphemeralRange is a range of ports the kernel does not hand out for
// ":0" listeners and outgoing connections: the 16,384 ports below
// net.ipv4.ip_local_port_range (Linux), or above it if that leaves more.
func nonEphemeralRange() (int, int) {
	lo, hi := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var l, h int
		if _, err := fmt.Sscan(string(b), &l, &h); err == nil {
			lo, hi = l, h
		}
	}
	if below := lo - 1 - 1024; below >= 65535-hi {
		return max(1024, lo-16384), lo - 1
	}
	return hi + 1, min(65535, hi+16384)
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
