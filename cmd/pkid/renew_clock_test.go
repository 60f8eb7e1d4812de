package main_test

import (
	"context"
	"os"
	"os/exec"
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

// aheadCA is a CA served in this process on a clock the test steps, with
// a role "svc" for *.svc.internal (1h certificates, mTLS renewal) and its
// root in a file.
type aheadCA struct {
	pk   *testserver.Server
	clk  *ca.FakeClock
	root string
}

func startAheadCA(t *testing.T) *aheadCA {
	t.Helper()
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		return testutil.AddRole(y, "svc", `
allowed_domains: [svc.internal]
allow_subdomains: true
allowed_ip_ranges: []
allowed_uri_patterns: []
default_ttl: 1h
max_ttl: 1h
key_types: [ec-p256]
ext_key_usage: [client_auth]
renewal: {enabled: true, max_age: 3h}
revocation_pointers: false
acme: {enabled: false, challenges: [], require_eab: false}`)
	})
	cfg, err := config.Load(filepath.Join(dir, "pkid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clk := ca.NewFakeClock(time.Now())
	pk, err := testserver.Start(cfg, ports, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pk.Stop() })
	root := filepath.Join(t.TempDir(), "root.crt")
	os.WriteFile(root, ca.PEMCert(pk.Run.CA.Root().Raw), 0o644)
	return &aheadCA{pk: pk, clk: clk, root: root}
}

// TestRenewDaemonNotYetValid: a service's certificate was signed while the
// CA's clock ran an hour ahead. While that clock is still ahead, `pkid
// cert renew --daemon` says so and renews nothing (a renewal would be as
// far ahead). Once the CA's clock is set right, a daemon does not wait two
// thirds of the certificate's life (forty minutes, while every peer
// refuses it): it finds the CA's clock agrees with its own and renews at
// once, into a certificate valid now. (The CA runs in this process, on a
// clock the test steps; the daemon asks again only every minute, so the
// second phase starts a new one.)
func TestRenewDaemonNotYetValid(t *testing.T) {
	a := startAheadCA(t)
	pk, clk, root := a.pk, a.clk, a.root
	clk.Step(time.Hour)
	iss, key, err := pk.Run.CA.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "svc", Requester: "test"}, CommonName: "ahead.svc.internal"})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	crt, keyFile, marks := filepath.Join(tmp, "svc.crt"), filepath.Join(tmp, "svc.key"), filepath.Join(tmp, "renewed")
	keyPEM, _ := ca.MarshalKey(key)
	os.WriteFile(keyFile, keyPEM, 0o600)
	os.WriteFile(crt, append(iss.PEM, iss.Chain[0]...), 0o644)
	start := func() (*exec.Cmd, *testutil.SyncBuffer) {
		d := exec.Command(pkidBin, "cert", "renew", "--ca-url", pk.Base, "--root", root, "--cert", crt, "--key", keyFile, "--daemon", "--exec", "echo x >> "+marks)
		var stderr testutil.SyncBuffer
		d.Stderr = &stderr
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Process.Kill(); d.Wait() })
		return d, &stderr
	}

	early, stderr := start()
	for deadline := time.Now().Add(testutil.DutyWait); !strings.Contains(stderr.String(), "ahead of this one: a certificate renewed now would not be valid yet"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not find the CA's clock ahead:\n%s", stderr.String())
		}
	}
	time.Sleep(200 * time.Millisecond)
	if b, _ := os.ReadFile(marks); len(b) > 0 {
		t.Fatalf("renewed while the CA's clock was an hour ahead:\n%s", stderr.String())
	}
	early.Process.Kill()
	early.Wait()

	clk.Step(-time.Hour) // NTP sets the CA's clock right
	_, stderr = start()
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(marks); strings.Contains(string(b), "x") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificate not valid yet was not renewed:\n%s", stderr.String())
		}
	}
	c, err := ca.LoadCertificate(crt)
	if err != nil || c.NotBefore.After(time.Now()) || ca.SerialString(c.SerialNumber) == iss.Record.Serial {
		t.Fatalf("renewed certificate %v: %v (valid from %s)", c.SerialNumber, err, c.NotBefore)
	}
}

// TestIssueWarnsNotYetValid: `pkid cert issue` against a CA whose clock
// runs an hour ahead writes the certificate (the CA's answer is good) and
// warns that it is valid only from an hour on, so the user learns why
// peers refuse it now rather than from a TLS error elsewhere.
func TestIssueWarnsNotYetValid(t *testing.T) {
	a := startAheadCA(t)
	a.clk.Step(time.Hour)
	tok, _, err := api.CreateToken(context.Background(), a.pk.Run.Store, a.clk.Now(), a.pk.Run.Config.Roles, api.TokenOptions{Name: "ahead", Roles: []string{"svc"}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	r := pkid(t, nil, "cert", "issue", "--ca-url", a.pk.Base, "--root", a.root, "--token", tok, "--role", "svc", "--cn", "w.svc.internal",
		"--out", filepath.Join(tmp, "w.crt"), "--key-out", filepath.Join(tmp, "w.key"))
	if r.code != 0 || !strings.Contains(r.stderr, "warning: the certificate is valid only from") || !strings.Contains(r.stderr, "the CA's clock or this one is wrong") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
