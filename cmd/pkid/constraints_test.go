package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"pkid/internal/testutil"
)

// TestNameConstraints: a CA made with --permitted-domain signs nothing
// that breaks its intermediate's constraints, which no client would
// accept. init refuses a server certificate outside them (its default,
// localhost, is) and narrows the default role to them; for a role that
// allows more, config check warns, REST issuance answers 403 and ACME's
// newOrder rejectedIdentifier, each naming the constraint; serve refuses to
// start with a server name outside them, and config check says so first.
func TestNameConstraints(t *testing.T) {
	d := filepath.Join(t.TempDir(), "ca")
	r := pkid(t, nil, "init", "--dir", d, "--permitted-domain", "internal")
	if r.code != 2 || !strings.Contains(r.stderr, "dns localhost is outside the intermediate's name constraints (permitted dns: internal)") {
		t.Fatalf("init with the default server names outside the constraint: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(d, "pkid.yaml")); err == nil {
		t.Fatal("the refused init wrote pkid.yaml")
	}
	d, https, _ := initCA(t, "--permitted-domain", "internal", "--dns", "ca.internal", "--ip", "127.0.0.1")
	cfg := filepath.Join(d, "pkid.yaml")
	// init narrowed the default role to the constraint; a role that
	// allows more (localhost) gets a warning from config check, as from
	// serve's log.
	raw, _ := os.ReadFile(cfg)
	if !strings.Contains(string(raw), "    allowed_domains: [internal]\n") || !strings.Contains(string(raw), "    allowed_ip_ranges: [127.0.0.0/8]\n") {
		t.Fatalf("the default role under --permitted-domain internal:\n%s", raw)
	}
	if r := pkid(t, nil, "config", "check", "--config", cfg); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("config check of a CA made with constraints: %+v", r)
	}
	os.WriteFile(cfg, []byte(testutil.AddRole(string(raw), "wide", "allowed_domains: [internal, localhost]\nallow_subdomains: true\ndefault_ttl: 1h\nmax_ttl: 2h\nkey_types: [ec-p256]\next_key_usage: [server_auth]\nacme: {enabled: true, challenges: [http-01]}")), 0o644)
	if r := pkid(t, nil, "config", "check", "--config", cfg); r.code != 0 || !strings.Contains(r.stderr, `warning: role "wide" allows domain localhost, outside the intermediate's name constraints`) {
		t.Fatalf("config check of a role wider than the constraints: %+v", r)
	}
	s := serve(t, d, https)
	admin := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--role", "wide", "--admin"))

	issueAs := func(role, body string) (int, string) {
		req, _ := http.NewRequest("POST", s.base+"/v1/issue/"+role, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Detail string }
		json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Detail
	}
	if code, detail := issueAs("wide", `{"dns_names":["x.localhost"]}`); code != 403 || !strings.Contains(detail, `role "wide" allows the name, but dns x.localhost is outside the intermediate's name constraints (permitted dns: internal)`) {
		t.Fatalf("fail/REST outside the constraints: %d %s", code, detail)
	}
	if code, detail := issueAs("default", `{"dns_names":["x.localhost"]}`); code != 403 || !strings.Contains(detail, `role "default" refuses`) {
		t.Fatalf("fail/REST, the narrowed default role: %d %s", code, detail)
	}
	// IP addresses are not constrained (no --permitted-ip): per name type.
	if code, detail := issueAs("default", `{"dns_names":["x.internal"],"ip_addresses":["127.0.0.2"]}`); code != 201 {
		t.Fatalf("ok/REST inside the constraints: %d %s", code, detail)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cl := &xacme.Client{Key: key, DirectoryURL: s.base + "/acme/wide/directory", HTTPClient: s.client}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.Register(ctx, &xacme.Account{}, xacme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	_, err := cl.AuthorizeOrder(ctx, xacme.DomainIDs("x.localhost"))
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:rejectedIdentifier" || !strings.Contains(ae.Detail, "outside the intermediate's name constraints") {
		t.Fatalf("fail/ACME newOrder outside the constraints: %v", err)
	}

	// A server certificate outside them, edited into pkid.yaml: serve
	// stops at start, saying why, instead of serving what no client takes.
	s.stop(t, syscall.SIGTERM)
	raw, _ = os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "dns_names: [ca.internal]", "dns_names: [localhost]", 1)), 0o644)
	if r := pkid(t, nil, "config", "check", "--config", cfg); r.code != 1 || !strings.Contains(r.stderr, "tls.dns_names: dns localhost is outside the intermediate's name constraints") {
		t.Fatalf("config check of a server name outside the constraints: %+v", r)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	out, err := exec.CommandContext(sctx, pkidBin, "serve", "--config", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "server certificate: role \"_server\" allows the name, but dns localhost is outside the intermediate's name constraints") {
		t.Fatalf("serve with a server name outside the constraints: %v\n%s", err, tail(string(out), 2000))
	}
}
