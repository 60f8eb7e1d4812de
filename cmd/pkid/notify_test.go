package main_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/internal/testutil"
)

// TestServiceNotify plays systemd's side of the notify protocol with a
// real pkid serve: READY=1 comes once /healthz answers (and not before),
// with a STATUS naming the address and the issuer; SIGHUP gives
// RELOADING=1 with MONOTONIC_USEC (what Type=notify-reload requires) and
// READY=1 once the roles are applied, or refused, which the status then
// says; a /healthz warning (a pkid.yaml that would not load) shows in the
// status within seconds, and goes from it once mended; SIGTERM gives
// STOPPING=1.
func TestServiceNotify(t *testing.T) {
	dir, httpsAddr, _ := initCA(t)
	sock, next := listenNotify(t)

	cmd := exec.Command(pkidBin, "serve", "--config", filepath.Join(dir, "pkid.yaml"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	startServer(t, cmd)
	ready := next("READY=1")
	s := &server{cmd: cmd, base: "https://" + httpsAddr, client: caClient(t, dir)}
	if st := s.status(t, "/healthz"); st != 200 {
		t.Fatalf("ok/ready means answering: /healthz %d just after %q", st, ready)
	}
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=serving https://"+httpsAddr) || !strings.Contains(ready, "issuing from ") {
		t.Fatalf("ok/ready: %q", ready)
	}

	// await skips the STATUS updates of a health change on the way.
	await := func(what string, ok func(string) bool) string {
		t.Helper()
		for {
			if m := next(what); ok(m) {
				return m
			}
		}
	}
	cmd.Process.Signal(syscall.SIGHUP)
	reloading := await("RELOADING=1", func(m string) bool { return strings.HasPrefix(m, "RELOADING=1\n") })
	lines := strings.Split(reloading, "\n")
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") || err != nil || usec <= 0 {
		t.Fatalf("ok/reloading: %q", reloading)
	}
	if again := next("READY=1 after the reload"); again != ready {
		t.Fatalf("ok/reloaded: %q, want %q again", again, ready)
	}

	// A pkid.yaml that no longer loads: /healthz warns, and so does the
	// status; a reload is refused, and serve is ready on the old roles.
	cfg := filepath.Join(dir, "pkid.yaml")
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(raw), "default_ttl: 24h", "default_ttl: 2d", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	serving := "READY=1\nSTATUS=serving https://" + httpsAddr
	if warned := next("a STATUS with the health warning"); !strings.HasPrefix(warned, serving) || !strings.Contains(warned, "(GET /healthz)") || !strings.Contains(warned, "pkid.yaml does not load") {
		t.Fatalf("ok/health in the status: %q", warned)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	await("RELOADING=1", func(m string) bool { return strings.HasPrefix(m, "RELOADING=1\n") })
	if refused := next("READY=1 after a refused reload"); !strings.HasPrefix(refused, serving) || !strings.Contains(refused, "the last reload was refused") {
		t.Fatalf("fail/refused reload: %q", refused)
	}
	if err := os.WriteFile(cfg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// Mended, the warning goes; the refused reload is still the last one.
	if mended := next("the STATUS once pkid.yaml loads again"); !strings.HasPrefix(mended, serving) || strings.Contains(mended, "pkid.yaml does not load") || !strings.Contains(mended, "the last reload was refused") {
		t.Fatalf("ok/health mended: %q", mended)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	await("STOPPING=1", func(m string) bool { return strings.HasPrefix(m, "STOPPING=1\n") })
}

// listenNotify stands in for systemd: a NOTIFY_SOCKET for a process to
// tell, and next, which returns the next message (what: for the failure).
func listenNotify(t *testing.T) (sock string, next func(what string) string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // a socket path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sock, func(what string) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(testutil.DutyWait))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return string(buf[:n])
	}
}

// TestSystemdUnit: the units the README installs (serve, its two sockets,
// the renew daemon) are ones systemd accepts as written (systemd-analyze
// verify prints nothing), with the binary they name put where this test
// built it; a mistyped value or key is caught.
func TestSystemdUnit(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	bin, err := filepath.Abs(pkidBin)
	if err != nil {
		t.Fatal(err)
	}
	service, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", "pkid.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		file, as string
		lines    []string
		typo     [2]string // a mistyped form of the first
	}{
		{"pkid.service", "pkid.service", []string{"Type=notify\n", "ExecStart=/usr/local/bin/pkid serve --config /var/lib/pkid/pkid.yaml\n", "ExecReload=/bin/kill -HUP $MAINPID\n", "ReadWritePaths=/var/lib/pkid\n"}, [2]string{"Type=notify", "Type=notifyx"}},
		{"pkid-renew@.service", "pkid-renew@api.service", []string{"Type=notify\n", "ExecStart=/usr/local/bin/pkid cert renew --ca-url ${PKID_CA_URL} --cert /etc/pkid/%i/tls.crt --key /etc/pkid/%i/tls.key --daemon --exec \"systemctl reload-or-restart %i\"\n", "Restart=on-abnormal\n", "ReadWritePaths=/etc/pkid/%i\n"}, [2]string{"Type=notify", "Type=notifyx"}},
		{"pkid.socket", "pkid.socket", []string{"ListenStream=127.0.0.1:8443\n", "FileDescriptorName=https\n", "Service=pkid.service\n"}, [2]string{"FileDescriptorName=", "FileDescriptorNamx="}},
		{"pkid-http.socket", "pkid-http.socket", []string{"ListenStream=127.0.0.1:8080\n", "FileDescriptorName=http\n", "Service=pkid.service\n"}, [2]string{"FileDescriptorName=", "FileDescriptorNamx="}},
	} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", u.file))
		if err != nil {
			t.Fatal(err)
		}
		unit := string(raw)
		for _, want := range u.lines {
			if !strings.Contains(unit, want) {
				t.Fatalf("%s has no line %q", u.file, want)
			}
		}
		for name, body := range map[string]string{
			"ok/as shipped":         unit,
			"fail/a mistyped value": strings.Replace(unit, u.typo[0], u.typo[1], 1),
		} {
			// A socket unit is verified beside the service it starts.
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "pkid.service"), []byte(strings.ReplaceAll(string(service), "/usr/local/bin/pkid", bin)), 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, u.as)
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(body, "/usr/local/bin/pkid", bin)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", path).CombinedOutput()
			if clean := err == nil && len(out) == 0; clean != strings.HasPrefix(name, "ok/") {
				t.Fatalf("%s, %s: systemd-analyze verify: %v\n%s", u.file, name, err, out)
			}
		}
	}
}
