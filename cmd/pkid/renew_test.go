package main_test

import (
	"crypto/tls"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestRenewDaemon: `pkid cert renew --daemon` keeps a 6-second certificate
// fresh: it renews at least twice, runs --exec after each, and a reader
// polling the files never sees a certificate without its key. (Not 3
// seconds: see TestTwoServicesRenewThemselves in pkidclient.)
func TestRenewDaemon(t *testing.T) {
	r := setupRenewal(t, "6s", "d.svc.internal")
	s, root, crt, key := r.s, r.root, r.crt, r.key
	marks := filepath.Join(t.TempDir(), "renewed")
	first, _ := ca.LoadCertificate(crt)

	daemon := exec.Command(pkidBin, "cert", "renew", "--ca-url", s.base, "--root", root, "--cert", crt, "--key", key, "--daemon", "--exec", "echo x >> "+marks)
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { daemon.Process.Kill(); daemon.Wait() }()

	var mismatches atomic.Int32
	stop := make(chan struct{})
	go func() { // a reader that retries on a mismatch, as the contract says readers do
		for {
			select {
			case <-stop:
				return
			default:
			}
			// The pair is mismatched only between two back-to-back
			// renames; three retries 5 ms apart ride out a descheduled
			// writer on a loaded machine.
			ok := false
			for try := 0; try < 4 && !ok; try++ {
				if try > 0 {
					time.Sleep(5 * time.Millisecond)
				}
				_, err := tls.LoadX509KeyPair(crt, key)
				ok = err == nil
			}
			if !ok {
				mismatches.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(25 * time.Second)
	for {
		b, _ := os.ReadFile(marks)
		if strings.Count(string(b), "x") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon renewed %d times in 25s", strings.Count(string(b), "x"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	last, _ := ca.LoadCertificate(crt)
	if last.SerialNumber.Cmp(first.SerialNumber) == 0 || mismatches.Load() > 0 {
		t.Fatalf("serial unchanged or %d mismatched reads", mismatches.Load())
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o", fi.Mode().Perm())
	}
}

// TestRenewOnceSignalsPidFile: one-shot renewal, then the process named in
// --pid-file gets --signal.
func TestRenewOnceSignalsPidFile(t *testing.T) {
	r := setupRenewal(t, "1h", "pid.svc.internal")
	s, root, crt, key, tmp := r.s, r.root, r.crt, r.key, t.TempDir()
	before, _ := ca.LoadCertificate(crt)
	// A process started under nohup inherits SIGHUP ignored, and so does
	// the sleeper; then the test asks for USR1 instead.
	name, want := "HUP", syscall.SIGHUP
	if signal.Ignored(syscall.SIGHUP) {
		name, want = "USR1", syscall.SIGUSR1
	}
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(tmp, "app.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"), 0o644)
	mustPKID(t, nil, "cert", "renew", "--ca-url", s.base, "--root", root, "--cert", crt, "--key", key, "--pid-file", pidFile, "--signal", name)
	err := sleeper.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != want {
		t.Fatalf("the pid-file process was not sent SIG%s: %v", name, err)
	}
	after, _ := ca.LoadCertificate(crt)
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("certificate not renewed")
	}
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		t.Fatalf("renewed pair does not match: %v", err)
	}
}

// TestRenewDaemonBacksOff: with the CA down when renewal is due, the daemon
// logs the failure and retries; once the CA is back it renews, before the
// certificate expires. Told a NOTIFY_SOCKET, it says each step to systemd
// (ready; the certificate and its next renewal; the failure and the
// retry; the new certificate). (15-second certificates: renewal is due 10 s in,
// which leaves the CA's restart 5 s on a loaded machine; 6 s left it two,
// and it was seen to miss them.)
func TestRenewDaemonBacksOff(t *testing.T) {
	r := setupRenewal(t, "15s", "b.svc.internal")
	s, root, crt, key := r.s, r.root, r.crt, r.key
	first, _ := ca.LoadCertificate(crt)
	s.stop(t, syscall.SIGTERM)

	var log testutil.SyncBuffer
	sock, next := listenNotify(t)
	daemon := exec.Command(pkidBin, "cert", "renew", "--ca-url", s.base, "--root", root, "--cert", crt, "--key", key, "--daemon")
	daemon.Stderr = &log
	daemon.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { daemon.Process.Kill(); daemon.Wait() }()
	// Under systemd, `systemctl status` says what the daemon waits for.
	sn := ca.SerialString(first.SerialNumber)
	if m := next("READY=1"); !strings.HasPrefix(m, "READY=1\nSTATUS=certificate "+sn+" valid until "+first.NotAfter.UTC().Format(time.RFC3339)+"; next renewal at ") {
		t.Fatalf("ok/ready: %q", m)
	}
	if m := next("a failed renewal's status"); !strings.HasPrefix(m, "READY=1\nSTATUS=certificate "+sn+" valid until ") || !strings.Contains(m, "; renewal failed, retrying at ") {
		t.Fatalf("fail/the CA is down: %q", m)
	}
	deadline := time.Now().Add(testutil.DutyWait)
	for !strings.Contains(log.String(), "renewal failed; retrying") {
		if time.Now().After(deadline) {
			t.Fatalf("no retry logged:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	serve(t, r.dir, r.https)
	for {
		if c, err := ca.LoadCertificate(crt); err == nil && c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			// The next status names the new certificate.
			for m := ""; !strings.Contains(m, "certificate "+ca.SerialString(c.SerialNumber)+" valid until "); {
				m = next("the renewed certificate's status")
			}
			return
		}
		if time.Now().After(first.NotAfter) {
			t.Fatalf("not renewed after the CA came back, before the certificate expired at %s:\n%s", first.NotAfter, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRenewDaemonStopsWhenRefused: when the CA refuses renewal for good
// (here the certificate was revoked), the daemon says why and exits 1 at
// once, instead of retrying until the certificate expires and hiding it
// from whatever supervises it.
func TestRenewDaemonStopsWhenRefused(t *testing.T) {
	r := setupRenewal(t, "9s", "r.svc.internal")
	c, _ := ca.LoadCertificate(r.crt)
	mustPKID(t, nil, "cert", "revoke", "--config", filepath.Join(r.dir, "pkid.yaml"), "--reason", "superseded", ca.SerialString(c.SerialNumber))

	var log testutil.SyncBuffer
	daemon := exec.Command(pkidBin, "cert", "renew", "--ca-url", r.s.base, "--root", r.root, "--cert", r.crt, "--key", r.key, "--daemon")
	daemon.Stderr = &log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("daemon ended with %v, want exit 1:\n%s", err, log.String())
		}
	case <-time.After(time.Until(c.NotAfter)):
		daemon.Process.Kill()
		<-exited
		t.Fatalf("daemon still running when the certificate expired:\n%s", log.String())
	}
	for _, want := range []string{"renewal refused, so the daemon stops", "was revoked (superseded)", "(HTTP 401)"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), "retrying") {
		t.Errorf("a refusal was retried:\n%s", log.String())
	}
}

// renewal is a served CA with a renewable "svc" role and one certificate
// of it on disk.
type renewal struct {
	s                          *server
	dir, https, root, crt, key string
}

// setupRenewal inits and serves a CA whose "svc" role issues ttl-long
// certificates, and issues one for cn with the CLI.
func setupRenewal(t *testing.T, ttl, cn string) *renewal {
	t.Helper()
	d, https, _ := initCA(t)
	cfgPath := filepath.Join(d, "pkid.yaml")
	raw, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(testutil.AddRole(string(raw), "svc", `
allowed_domains: [svc.internal]
allow_subdomains: true
allowed_ip_ranges: []
allowed_uri_patterns: []
default_ttl: `+ttl+`
max_ttl: `+ttl+`
key_types: [ec-p256]
ext_key_usage: [client_auth]
renewal: {enabled: true, max_age: 1h}
revocation_pointers: false
acme: {enabled: false, challenges: [], require_eab: false}`)), 0o644)
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfgPath, "--role", "svc"))
	r := &renewal{s: serve(t, d, https), dir: d, https: https, root: filepath.Join(d, "certs", "root.crt")}
	tmp := t.TempDir()
	r.crt, r.key = filepath.Join(tmp, "svc.crt"), filepath.Join(tmp, "svc.key")
	mustPKID(t, nil, "cert", "issue", "--ca-url", r.s.base, "--root", r.root, "--token", tok, "--role", "svc", "--cn", cn, "--out", r.crt, "--key-out", r.key)
	return r
}

// TestRenewExecBounded: --exec cannot hold up the renewals after it. A
// hook that hangs is killed after --exec-timeout (the renewal stands, the
// command says so and exits 1); a hook that leaves a background process
// holding its output returns once the hook itself has exited.
func TestRenewExecBounded(t *testing.T) {
	r := setupRenewal(t, "1h", "exec.svc.internal")
	renew := func(extra ...string) (result, time.Duration) {
		start := time.Now()
		res := pkid(t, nil, append([]string{"cert", "renew", "--ca-url", r.s.base, "--root", r.root, "--cert", r.crt, "--key", r.key}, extra...)...)
		return res, time.Since(start)
	}
	serial := func() string { c, _ := ca.LoadCertificate(r.crt); return ca.SerialString(c.SerialNumber) }

	before := serial()
	res, took := renew("--exec", "sleep 30", "--exec-timeout", "1s")
	if res.code != 1 || !strings.Contains(res.stderr, "still running after --exec-timeout 1s, killed") || took > 20*time.Second {
		t.Fatalf("hung hook: %+v after %s", res, took)
	}
	if serial() == before {
		t.Fatal("the renewal before the hung hook was not kept")
	}

	res, took = renew("--exec", "sleep 30 &")
	if res.code != 0 || !strings.Contains(res.stderr, "leaving a process with its output open") || took > 20*time.Second {
		t.Fatalf("hook leaving a background process: %+v after %s", res, took)
	}

	if res, _ := renew("--exec", "true", "--exec-timeout", "0s"); res.code != 2 {
		t.Fatalf("--exec-timeout 0s: %+v", res)
	}
}

// TestRenewKeepsOpenSSLKeyForm: a service whose key openssl made (SEC1,
// after an EC PARAMETERS block) and whose certificate `cert sign` got
// renews into a SEC1 key file that openssl still reads, not PKCS#8.
func TestRenewKeepsOpenSSLKeyForm(t *testing.T) {
	openssl := needTool(t, "openssl")
	r := setupRenewal(t, "1h", "form.svc.internal")
	dir := t.TempDir()
	key, csr, crt := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.csr"), filepath.Join(dir, "k.crt")
	for _, args := range [][]string{
		{"ecparam", "-name", "prime256v1", "-genkey", "-out", key},
		{"req", "-new", "-key", key, "-subj", "/CN=form.svc.internal", "-out", csr},
	} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(r.dir, "pkid.yaml"), "--role", "svc"))
	mustPKID(t, nil, "cert", "sign", "--ca-url", r.s.base, "--root", r.root, "--token", tok, "--role", "svc", "--csr", csr, "--out", crt)
	mustPKID(t, nil, "cert", "renew", "--ca-url", r.s.base, "--root", r.root, "--cert", crt, "--key", key)
	raw, _ := os.ReadFile(key)
	if !strings.HasPrefix(string(raw), "-----BEGIN EC PRIVATE KEY-----\n") {
		t.Fatalf("the renewed key file:\n%s", raw)
	}
	if out, err := exec.Command(openssl, "ec", "-in", key, "-noout", "-check").CombinedOutput(); err != nil {
		t.Fatalf("openssl reads the renewed key: %v\n%s", err, out)
	}
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		t.Fatalf("the renewed pair: %v", err)
	}
}
