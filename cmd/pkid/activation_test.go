package main_test

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pkid/internal/testutil"
)

// activated runs pkid serve as systemd's socket activation does: the
// files as fds 3 on, LISTEN_FDS and LISTEN_FDNAMES naming them, and
// LISTEN_PID the pid serve runs as (a shell that execs it knows it).
func activated(cfg, names string, files ...*os.File) *exec.Cmd {
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=$2 LISTEN_FDNAMES=$3 exec "$0" serve --config "$1"`, pkidBin, cfg, strconv.Itoa(len(files)), names)
	cmd.ExtraFiles = files
	return cmd
}

// listenerFile is a loopback listener and a copy of its socket to pass on.
func listenerFile(t *testing.T) (net.Listener, *os.File) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return l, f
}

// TestSocketActivation: given sockets by systemd's protocol, serve answers
// HTTPS and plain HTTP on them and binds neither address of pkid.yaml.
// Killed and started again on the same sockets (which systemd holds
// meanwhile; here the test does), a client that connected while no serve
// ran is answered, not refused. Sockets it cannot use are refused at
// start, saying why.
func TestSocketActivation(t *testing.T) {
	dir, configured, configuredPlain := initCA(t)
	cfg := filepath.Join(dir, "pkid.yaml")
	httpsL, httpsF := listenerFile(t)
	plainL, plainF := listenerFile(t)
	client := func() *http.Client {
		c := caClient(t, dir)
		c.Timeout = testutil.DutyWait
		c.Transport.(*http.Transport).DisableKeepAlives = true
		return c
	}
	base := "https://" + httpsL.Addr().String()

	var log testutil.SyncBuffer
	cmd := activated(cfg, "https:http", httpsF, plainF)
	cmd.Stderr = &log
	exited := startServer(t, cmd)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client().Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ok/serve on the passed sockets: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, err := client().Get("http://" + plainL.Addr().String() + "/crl"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("ok/plain HTTP on the passed socket: %v %v", resp, err)
	}
	for _, addr := range []string{configured, configuredPlain} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("ok/pkid.yaml's %s is bound too", addr)
		}
	}
	if !strings.Contains(log.String(), "listening on a socket the service manager passed") {
		t.Fatalf("ok/the log says where it listens:\n%s", log.String())
	}

	// A restart: the sockets stay open, so a client that connects while
	// no serve runs waits in the backlog for the next one.
	cmd.Process.Kill()
	<-exited
	answered := make(chan error, 1)
	go func() {
		resp, err := client().Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = errors.New(resp.Status)
			}
		}
		answered <- err
	}()
	time.Sleep(300 * time.Millisecond) // connected, waiting
	select {
	case err := <-answered:
		t.Fatalf("answered with no serve running: %v", err)
	default:
	}
	again := activated(cfg, "https:http", httpsF, plainF)
	startServer(t, again)
	if err := <-answered; err != nil {
		t.Fatalf("ok/the client that connected during the restart: %v", err)
	}

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpF, err := udp.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer udpF.Close()
	_, spareF := listenerFile(t)
	for _, c := range []struct {
		name, names, want string
		files             []*os.File
	}{
		{"fail/a name serve does not take", "https:admin", `socket activation passed a socket named "admin"`, []*os.File{httpsF, spareF}},
		{"fail/two of one name", "https:https", `socket activation passed 2 sockets named "https"`, []*os.File{httpsF, spareF}},
		{"fail/not a listening stream socket", "http", `socket activation passed "http", which is not a listening stream socket`, []*os.File{udpF}},
	} {
		out, err := activated(cfg, c.names, c.files...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), c.want) {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
	}
}
