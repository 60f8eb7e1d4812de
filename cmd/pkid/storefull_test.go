package main_test

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStoreFullOnHealthz: a real `pkid serve` whose database file cannot
// be written past its two meta pages (RLIMIT_FSIZE set on the running process: the way
// a full disk looks to it) refuses to sign, says why on /healthz
// ("degraded", with the store's error but not the file's path, since
// anyone may read /healthz), keeps serving reads, and recovers
// by itself once the file may grow again: the next signing succeeds and
// /healthz is "ok" with no warning, without a restart. Every certificate
// signed is still listed.
func TestStoreFullOnHealthz(t *testing.T) {
	d, https, _ := initCA(t)
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default"))
	s := serve(t, d, https)
	csr, _ := newCSR(t, "full.internal")
	ctx := context.Background()
	before, err := s.sign(ctx, tok, csr)
	if err != nil {
		t.Fatal(err)
	}
	pid := s.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatal(err)
	}
	full := unix.Rlimit{Cur: 8 << 10, Max: old.Max} // bbolt's meta pages are its first 8 KB
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &full, nil); err != nil {
		t.Fatal(err)
	}

	if _, err := s.sign(ctx, tok, csr); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("fail/full: sign answered %v, want HTTP 500", err)
	}
	h := health(t, s)
	if h.Status != "degraded" || len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "the store's last commit") || !strings.Contains(h.Warnings[0], "write: file too large") || strings.Contains(h.Warnings[0], d) {
		t.Fatalf("fail/full: /healthz %+v", h)
	}
	if code := s.status(t, "/v1/certs/"+before); code != 200 {
		t.Fatalf("fail/full: reading a record: HTTP %d", code)
	}
	if m := metricsText(t, s); !strings.Contains(m, "\npkid_store_write_failing 1\n") {
		t.Fatal("fail/full: /metrics has no pkid_store_write_failing 1")
	}

	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
		t.Fatal(err)
	}
	after, err := s.sign(ctx, tok, csr)
	if err != nil {
		t.Fatalf("ok/room again: %v", err)
	}
	if h := health(t, s); h.Status != "ok" || len(h.Warnings) != 0 {
		t.Fatalf("ok/room again: /healthz %+v", h)
	}
	if m := metricsText(t, s); !strings.Contains(m, "\npkid_store_write_failing 0\n") {
		t.Fatal("ok/room again: /metrics has no pkid_store_write_failing 0")
	}
	for _, sn := range []string{before, after} {
		if code := s.status(t, "/v1/certs/"+sn); code != 200 {
			t.Fatalf("certificate %s: HTTP %d", sn, code)
		}
	}
}

type healthz struct {
	Status   string   `json:"status"`
	Warnings []string `json:"warnings"`
}

func health(t *testing.T, s *server) healthz {
	t.Helper()
	c := *s.client
	c.Timeout = 5 * time.Second
	resp, err := c.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthz
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: HTTP %d, %v", resp.StatusCode, err)
	}
	return h
}

func metricsText(t *testing.T, s *server) string {
	t.Helper()
	return s.getText(t, "/metrics")
}

// getText is the body of GET path on s, over its HTTPS API.
func (s *server) getText(t *testing.T, path string) string {
	t.Helper()
	resp, err := s.client.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
