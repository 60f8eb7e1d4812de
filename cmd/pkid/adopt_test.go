package main_test

import (
	"crypto/tls"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
)

// TestAdoptAfterRestore: a service renews its certificate over mTLS after
// the store's backup; restored from the backup, the CA knows nothing of
// the renewed certificate, and refuses to renew it. `pkid cert adopt`
// records it (through the admin socket, with an audit line; a second
// time it is recorded already), and the service renews again. With serve
// stopped another certificate issued since the backup is adopted on the
// store. A file of no certificate of this CA, and bad usage, are refused.
func TestAdoptAfterRestore(t *testing.T) {
	d, https, _ := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	root := filepath.Join(d, "certs", "root.crt")
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default"))
	s := serve(t, d, https)
	crt, key, _ := issueCert(t, s, root, tok, "svc.internal")
	backup := filepath.Join(t.TempDir(), "backup.db")
	mustPKID(t, nil, "backup", "--config", cfg, "--out", backup)
	renew := func() result {
		return pkid(t, nil, "cert", "renew", "--ca-url", s.base, "--root", root, "--cert", crt, "--key", key)
	}
	if r := renew(); r.code != 0 {
		t.Fatalf("renew before the restore: %+v", r)
	}
	renewed, err := ca.LoadCertificate(crt)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := issueCert(t, s, root, tok, "other.internal")
	third, _, _ := issueCert(t, s, root, tok, "third.internal")
	s.stop(t, syscall.SIGTERM)
	mustPKID(t, nil, "restore", "--config", cfg, "--from", backup)
	s = serve(t, d, https)

	if r := renew(); r.code != 1 || !strings.Contains(r.stderr, "has no record at this CA") {
		t.Fatalf("fail/renew after the restore: %+v", r)
	}
	// The refusal says when to ask again, so a renewing daemon keeps
	// asking while the operator adopts the certificate.
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	mtls := s.client.Transport.(*http.Transport).Clone()
	mtls.TLSClientConfig.Certificates = []tls.Certificate{pair}
	resp, err := (&http.Client{Transport: mtls, Timeout: 10 * time.Second}).Post(s.base+"/v1/renew", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("Retry-After") != "300" {
		t.Fatalf("fail/renew after the restore: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	serial := ca.SerialString(renewed.SerialNumber)
	if r := pkid(t, nil, "cert", "adopt", "--config", cfg, "--role", "default", crt); r.code != 0 || !strings.Contains(r.stderr, crt+": adopted "+serial+" [svc.internal] under role default, valid until ") {
		t.Fatalf("ok/adopt through the admin socket: %+v", r)
	}
	if !slices.ContainsFunc(auditLines(s.logs()), func(l auditLine) bool {
		return l.Event == "adopt" && l.Requester == "admin-socket" && l.Outcome == "adopted" && l.Serial == serial
	}) {
		t.Fatalf("no adopt audit line:\n%s", s.logs())
	}
	if r := pkid(t, nil, "cert", "adopt", "--config", cfg, "--role", "default", crt); r.code != 0 || !strings.Contains(r.stderr, serial+" is recorded already") {
		t.Fatalf("ok/adopt again: %+v", r)
	}
	if r := renew(); r.code != 0 {
		t.Fatalf("ok/renew once adopted: %+v", r)
	}
	if r := pkid(t, nil, "cert", "adopt", "--config", cfg, "--role", "default", root, other); r.code != 1 || !strings.Contains(r.stderr, root+": certificate ") ||
		!strings.Contains(r.stderr, "not by this CA's intermediate") || !strings.Contains(r.stderr, other+": adopted ") || !strings.Contains(r.stderr, "not adopted: "+root) {
		t.Fatalf("fail/the root, with a good one beside it: %+v", r)
	}
	s.stop(t, syscall.SIGTERM)
	if r := pkid(t, nil, "cert", "adopt", "--config", cfg, "--role", "default", third); r.code != 0 || !strings.Contains(r.stderr, third+": adopted ") {
		t.Fatalf("ok/adopt with serve stopped: %+v", r)
	}
	for _, args := range [][]string{
		{"cert", "adopt", "--config", cfg, crt},
		{"cert", "adopt", "--config", cfg, "--role", "default"},
	} {
		if r := pkid(t, nil, args...); r.code != 2 {
			t.Fatalf("fail/usage %v: %+v", args, r)
		}
	}
}
