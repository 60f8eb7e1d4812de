package main_test

import (
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestMakeRunExamples runs scripts/dev-run.sh, which `make run` runs, as a
// newcomer would. Then it runs the curl and certbot examples that the
// script prints, verbatim, from the same directory: the contract promises
// they work as printed on a fresh machine. It does this twice, each time
// with a new development CA in a new directory, as after `rm -rf
// .pkid-dev` or in a second checkout. certbot's account and certificates
// must belong to the CA they came from: kept in a shared directory, the
// second CA's certbot ran as the first CA's account, which the second CA
// answers with accountDoesNotExist.
func TestMakeRunExamples(t *testing.T) {
	for _, tool := range []string{"certbot", "curl", "openssl"} {
		needTool(t, tool)
	}
	// The dev config keeps pkid init's default ports, as the examples do.
	for _, addr := range []string{"127.0.0.1:8443", "127.0.0.1:8080", "127.0.0.1:5002"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("make run's port %s is taken (is a make run of yours serving?): %v", addr, err)
		}
		l.Close()
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "dev-run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// One subtest per CA: each stops its server when it ends, so the next
	// finds the ports free.
	for _, round := range []string{"first dev CA", "second dev CA"} {
		t.Run(round, func(t *testing.T) { devRunExamples(t, script) })
	}
}

// devRunExamples starts dev-run.sh in a new directory, runs the two
// examples it prints, and stops the server when the test ends.
func devRunExamples(t *testing.T, script string) {
	work := t.TempDir()
	var out, errOut testutil.SyncBuffer
	cmd := exec.Command(script, pkidBin, ".pkid-dev") // it execs pkid serve
	cmd.Dir, cmd.Stdout, cmd.Stderr = work, &out, &errOut
	startServer(t, cmd)

	var curl, certbot string
	for deadline := time.Now().Add(testutil.DutyWait); curl == "" || certbot == ""; time.Sleep(20 * time.Millisecond) {
		lines := strings.Split(out.String(), "\n")
		lines = lines[:len(lines)-1] // whole lines only
		if i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  curl ") }); i >= 0 {
			curl = lines[i]
		}
		if i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  REQUESTS_CA_BUNDLE=") }); i >= 0 {
			certbot = lines[i]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no curl and certbot examples printed:\n%s\n%s", out.String(), errOut.String())
		}
	}
	run := func(line string) (string, error) {
		c := exec.Command("bash", "-c", line)
		c.Dir = work
		b, err := c.CombinedOutput()
		return string(b), err
	}
	// The banner comes before the server listens: retry curl until it is up.
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(50 * time.Millisecond) {
		got, err := run(curl)
		if err == nil && strings.Contains(got, `"certificate":"-----BEGIN CERTIFICATE-----`) && strings.Contains(got, `"private_key"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the printed curl example: %v\n%s\n%s", err, got, errOut.String())
		}
	}
	if got, err := run(certbot); err != nil {
		t.Fatalf("the printed certbot example: %v\n%s", err, tail(got, 3000))
	}
	f := strings.Fields(certbot)
	i := slices.Index(f, "--config-dir")
	if i < 0 || i+1 == len(f) {
		t.Fatalf("no --config-dir in %q", certbot)
	}
	dir := f[i+1]
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(work, dir)
	}
	leaf, err := ca.LoadCertificate(filepath.Join(dir, "live", "demo.internal", "cert.pem"))
	if err != nil || !slices.Equal(leaf.DNSNames, []string{"demo.internal"}) || time.Since(leaf.NotBefore) > 2*time.Minute {
		t.Fatalf("certbot's certificate: %v", err)
	}
}
