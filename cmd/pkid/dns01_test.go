package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestCertbotDNS01 gets a certificate for a name and its wildcard through
// dns-01 with Debian's certbot and its RFC 2136 plugin, which writes the
// TXT records into a real BIND (TSIG-signed dynamic updates), the way an
// internal zone is usually run. pkid's acme.resolver asks that BIND, which
// answers both authorizations' values at the one _acme-challenge name.
func TestCertbotDNS01(t *testing.T) {
	certbot := needTool(t, "certbot")
	named := needTool(t, "named")
	// The plugin is a Python module of Debian's certbot, no command.
	if err := exec.Command("/usr/bin/python3", "-c", "import certbot_dns_rfc2136").Run(); err != nil {
		if os.Getenv("PKID_E2E") == "1" {
			t.Fatalf("certbot's RFC 2136 plugin (python3-certbot-dns-rfc2136) is required with PKID_E2E=1: %v", err)
		}
		t.Skip("certbot's RFC 2136 plugin (python3-certbot-dns-rfc2136) not installed")
	}
	dnsAddr := startBIND(t, named)
	d, https, _, _ := initACMECA(t, map[string]string{
		"  resolver: \"\"\n":           "  resolver: \"" + dnsAddr + "\"\n",
		"    allow_wildcards: false\n": "    allow_wildcards: true\n",
	})
	s := serve(t, d, https)

	host, port, _ := net.SplitHostPort(dnsAddr)
	work := t.TempDir()
	creds := filepath.Join(work, "rfc2136.ini")
	os.WriteFile(creds, []byte("dns_rfc2136_server = "+host+"\ndns_rfc2136_port = "+port+"\ndns_rfc2136_name = certbot\ndns_rfc2136_secret = "+bindSecret+"\ndns_rfc2136_algorithm = HMAC-SHA256\n"), 0o600)
	newCertbot(t, certbot, d, s, work).ok("certonly", "--dns-rfc2136", "--dns-rfc2136-credentials", creds, "--dns-rfc2136-propagation-seconds", "1",
		"-d", "dns.internal", "-d", "*.dns.internal", "--agree-tos", "--register-unsafely-without-email", "--cert-name", "dns")
	leaf, err := ca.LoadCertificate(filepath.Join(work, "config", "live", "dns", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(slices.Values(leaf.DNSNames))
	if !slices.Equal(names, []string{"*.dns.internal", "dns.internal"}) {
		t.Fatalf("SANs %v, want dns.internal and its wildcard", leaf.DNSNames)
	}
	if st := s.recordStatus(t, ca.SerialString(leaf.SerialNumber)); st != "valid" {
		t.Fatalf("record: %s", st)
	}
	var validated []string
	for _, l := range auditLines(s.logs()) {
		if l.Event == "acme.validate" && l.Outcome == "valid" && l.Challenge == "dns-01" {
			validated = append(validated, l.Names...)
		}
	}
	if len(validated) != 2 {
		t.Fatalf("dns-01 validations in the audit log for %v, want the name and its wildcard", validated)
	}
}

// bindSecret is the TSIG key (HMAC-SHA256) certbot signs its updates
// with; made once per test binary.
var bindSecret = func() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}()

// startBIND runs named in the foreground on a free loopback port, primary
// for the zone "internal", which the TSIG key "certbot" may add TXT records
// to, and returns its address. It stops when the test ends. FreeAddr finds
// a port free for TCP; should its UDP twin be taken, named exits, "unable
// to listen on any configured interfaces", and another port is tried.
func startBIND(t *testing.T, named string) string {
	t.Helper()
	for range 3 {
		if addr, ok := tryBIND(t, named); ok {
			return addr
		}
	}
	t.Fatal("named found three ports in use")
	return ""
}

// tryBIND is one attempt of startBIND; ok is false when the port was taken.
func tryBIND(t *testing.T, named string) (addr string, ok bool) {
	t.Helper()
	dir := t.TempDir()
	addr = testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	os.WriteFile(filepath.Join(dir, "internal.zone"), []byte(`$TTL 60
@   IN SOA ns.internal. admin.internal. ( 1 60 60 600 60 )
    IN NS  ns.internal.
ns  IN A   127.0.0.1
dns IN A   127.0.0.1
`), 0o644)
	conf := filepath.Join(dir, "named.conf")
	os.WriteFile(conf, []byte(`key "certbot" { algorithm hmac-sha256; secret "`+bindSecret+`"; };
options {
  directory "`+dir+`";
  listen-on port `+port+` { 127.0.0.1; };
  listen-on-v6 { none; };
  pid-file "`+filepath.Join(dir, "named.pid")+`";
  recursion no;
  dnssec-validation no;
};
zone "internal" {
  type primary;
  file "`+filepath.Join(dir, "internal.zone")+`";
  update-policy { grant certbot zonesub TXT; };
};
`), 0o644)
	var log bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(named, "-g", "-c", conf)
	cmd.Stdout, cmd.Stderr = lockedWriter{&log, &mu}, lockedWriter{&log, &mu}
	exited := startServer(t, cmd)
	logs := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	// "running" alone ends named's start-up ("running on Linux ...", an
	// early line, does not).
	ready := regexp.MustCompile(`(?m) running$`)
	deadline := time.Now().Add(testutil.DutyWait)
	for !ready.MatchString(logs()) {
		select {
		case <-exited:
			// Debian's AppArmor profile for named confines it to /etc/bind
			// and /var/cache/bind: a denial is the machine's, not pkid's.
			if strings.Contains(logs(), "permission denied") {
				t.Skipf("named may not read %s (AppArmor?):\n%s", dir, logs())
			}
			if strings.Contains(logs(), "unable to listen on any configured interfaces") {
				return "", false // the port was taken
			}
			t.Fatalf("named exited:\n%s", logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("named not running:\n%s", logs())
		}
	}
	return addr, true
}
