package main_test

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestApacheMD runs Apache httpd with mod_md, Debian's, unchanged, against
// a built pkid. mod_md gets one site's certificate through http-01 and
// another's through tls-alpn-01, each on Apache's own port, staples pkid's
// OCSP answers (MDStapling), and asks pkid's renewalInfo (RFC 9773) when to
// renew: the window it logs is pkid's, to the second. One certificate is
// then revoked; at its next check (a graceful restart here, standing in
// for mod_md's check interval) mod_md learns from ARI to renew it at once,
// orders with "replaces", and Apache serves the new certificate, which
// pkid records as the revoked one's replacement; the other site keeps
// its certificate. The tls-alpn-01 site asks for the role's profile and
// insists on it (MDProfileMandatory), which works only if the directory
// offers it.
func TestApacheMD(t *testing.T) {
	apache := needTool(t, "apache2")
	modules := "/usr/lib/apache2/modules"
	if _, err := os.Stat(filepath.Join(modules, "mod_md.so")); err != nil {
		t.Fatalf("apache2 is installed but not mod_md: %v", err)
	}
	const site, alpnSite = "apache.internal", "alpn.apache.internal"
	tlsAddr := testutil.FreeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	d, https, _, h01 := initACMECA(t, map[string]string{
		"  hosts: {}\n":           "  hosts: {" + site + ": 127.0.0.1, " + alpnSite + ": 127.0.0.1}\n",
		"  tlsalpn01_port: 443\n": "  tlsalpn01_port: " + tlsPort + "\n",
	})
	s := serve(t, d, https)
	root := filepath.Join(d, "certs", "root.crt")
	_, httpPort, _ := net.SplitHostPort(h01)

	// Apache's children (user nobody) serve the http-01 answers from
	// mod_md's store, so they must be able to reach it.
	work := t.TempDir()
	for _, p := range []string{filepath.Dir(work), work} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// mod_md's watchdog, too, may run as nobody: it gets its own copy of
	// the root to trust.
	rootPEM, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	mdRoot := filepath.Join(work, "root.crt")
	if err := os.WriteFile(mdRoot, rootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(work, "error.log")
	conf := filepath.Join(work, "httpd.conf")
	load := func(mods ...string) string {
		var b strings.Builder
		for _, m := range mods {
			fmt.Fprintf(&b, "LoadModule %s_module %s/mod_%s.so\n", m, modules, m)
		}
		return b.String()
	}
	os.WriteFile(conf, []byte(`ServerRoot "`+work+`"
DefaultRuntimeDir "`+work+`"
PidFile "`+work+`/httpd.pid"
ErrorLog "`+errorLog+`"
LogLevel warn md:debug
Listen `+h01+`
Listen `+tlsAddr+`
`+load("mpm_event", "authz_core", "socache_shmcb", "ssl", "md")+`User nobody
Group nogroup
ServerName `+site+`
MDCertificateAuthority `+s.base+`/acme/default/directory
MDCACertificateFile "`+mdRoot+`"
MDCertificateAgreement accepted
MDContactEmail ops@example.com
MDStoreDir "`+work+`/md"
MDPortMap 80:`+httpPort+` 443:`+tlsPort+`
MDStapling on
<MDomain `+site+`>
  MDCAChallenges http-01
</MDomain>
<MDomain `+alpnSite+`>
  MDCAChallenges tls-alpn-01
  MDProfile default
  MDProfileMandatory on
</MDomain>
<VirtualHost *:`+tlsPort+`>
  ServerName `+site+`
  SSLEngine on
</VirtualHost>
<VirtualHost *:`+tlsPort+`>
  ServerName `+alpnSite+`
  Protocols http/1.1 acme-tls/1
  SSLEngine on
</VirtualHost>
`), 0o644)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	logFrom := func(off int) string {
		b, _ := os.ReadFile(errorLog)
		if off > len(b) {
			off = len(b)
		}
		return string(b[off:])
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- apache error log ---\n%s\n--- pkid log ---\n%s", tail(logFrom(0), 8000), tail(s.logs(), 3000))
		}
	})
	cmd := exec.Command(apache, "-f", conf, "-DFOREGROUND")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	exited := startServer(t, cmd)
	// waitLog waits for line in the error log past off, and returns the log
	// from off.
	waitLog := func(off int, line string) string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if l := logFrom(off); strings.Contains(l, line) {
				return l
			}
			select {
			case <-exited:
				t.Fatalf("apache exited: %s", out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("apache's log has no %q", line)
			}
		}
	}
	served := func(name, not string) *x509.Certificate {
		t.Helper()
		return servedStapled(t, "apache", exited, tlsAddr, name, roots, not)
	}
	// mod_md activates what it got at the next graceful restart.
	staged := func(name string) string {
		return "The Managed Domain " + name + " has been setup and changes will be activated on next (graceful) server restart"
	}
	waitLog(0, staged(site))
	waitLog(0, staged(alpnSite))
	off := len(logFrom(0))
	cmd.Process.Signal(syscall.SIGUSR1)
	first := served(site, "")
	if len(first.DNSNames) != 1 || first.DNSNames[0] != site || first.NotAfter.Sub(first.NotBefore) != 24*time.Hour+time.Minute {
		t.Fatalf("SANs %v, validity %s; want [%s] and the role's 24 h (+1 m skew)", first.DNSNames, first.NotAfter.Sub(first.NotBefore), site)
	}
	alpnFirst := served(alpnSite, "")
	if len(alpnFirst.DNSNames) != 1 || alpnFirst.DNSNames[0] != alpnSite {
		t.Fatalf("SANs %v, want [%s]", alpnFirst.DNSNames, alpnSite)
	}
	// At its restart mod_md asks renewalInfo about the certificates it
	// holds, and logs pkid's window: two thirds of the lifetime, opening a
	// tenth of it earlier.
	life := first.NotAfter.Sub(first.NotBefore)
	end := first.NotBefore.Add(life * 2 / 3)
	window := fmt.Sprintf("CA advises renew via ARI between %s and %s", end.Add(-life/10).UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	waitLog(off, window)

	old := ca.SerialString(first.SerialNumber)
	mustPKID(t, nil, "cert", "revoke", "--config", filepath.Join(d, "pkid.yaml"), "--reason", "keyCompromise", old)
	off = len(logFrom(0))
	cmd.Process.Signal(syscall.SIGUSR1)
	waitLog(off, "(explantion: "+s.base+"/v1/certs/"+old+")") // sic: mod_md's spelling
	waitLog(off, "md("+site+"): CA advises renew via ARI now")
	waitLog(off, staged(site))
	cmd.Process.Signal(syscall.SIGUSR1)
	renewed := served(site, old)
	if kept := served(alpnSite, ""); !kept.Equal(alpnFirst) {
		t.Fatalf("mod_md replaced %s's certificate too (%x), which was neither revoked nor due", alpnSite, kept.SerialNumber)
	}
	rec := s.record(t, ca.SerialString(renewed.SerialNumber))
	if rec.Status != "valid" || rec.Replaces != old {
		t.Fatalf("the renewal's record %+v, want valid and replacing %s", rec, old)
	}
	if prev := s.record(t, old); prev.Status != "revoked" || prev.ReplacedBy != ca.SerialString(renewed.SerialNumber) {
		t.Fatalf("the revoked record %+v, want replaced_by %x", prev, renewed.SerialNumber)
	}
	if bytes.Equal(renewed.RawSubjectPublicKeyInfo, first.RawSubjectPublicKeyInfo) {
		t.Fatal("the replacement carries the compromised key")
	}
}
