package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/internal/testutil"
)

// TestTokenAdminOverREST: an admin lists tokens (never a secret or its
// hash) and revokes one, which stops working at once; others may not.
func TestTokenAdminOverREST(t *testing.T) {
	s := shared
	victim := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Name = "to-revoke" })
	id, _, _ := strings.Cut(victim, ".")

	var list struct {
		Items []map[string]any `json:"items"`
	}
	if r := s.do(t, "GET", "/v1/tokens", s.admin, nil, &list); r.StatusCode != 200 {
		t.Fatalf("ok/list: %d", r.StatusCode)
	}
	found := false
	adminID, _, _ := strings.Cut(s.admin, ".")
	for _, it := range list.Items {
		if it["id"] == id {
			// Who made it: after an admin token leaks, the tokens it
			// made are found by this.
			found = it["name"] == "to-revoke" && it["created_by"] == "token:"+adminID
		}
		for _, k := range []string{"secret", "secret_hash", "token"} {
			if _, ok := it[k]; ok {
				t.Fatalf("fail/list shows %q: %v", k, it)
			}
		}
	}
	if !found {
		t.Fatalf("ok/list: token %s not listed", id)
	}

	for name, tok := range map[string]string{"fail/not admin": s.tok, "fail/no token": ""} {
		want := map[string]int{"fail/not admin": 403, "fail/no token": 401}[name]
		if r := s.do(t, "GET", "/v1/tokens", tok, nil, nil); r.StatusCode != want {
			t.Errorf("%s list: %d, want %d", name, r.StatusCode, want)
		}
		if r := s.do(t, "DELETE", "/v1/tokens/"+id, tok, nil, nil); r.StatusCode != want {
			t.Errorf("%s delete: %d, want %d", name, r.StatusCode, want)
		}
	}

	if r := s.do(t, "DELETE", "/v1/tokens/"+id, s.admin, nil, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("ok/delete: %d", r.StatusCode)
	}
	var p api.Problem
	if r := s.do(t, "GET", "/v1/roles", victim, nil, &p); r.StatusCode != 401 {
		t.Fatalf("fail/revoked token still works: %d %+v", r.StatusCode, p)
	}
	if r := s.do(t, "DELETE", "/v1/tokens/"+id, s.admin, nil, &p); r.StatusCode != 404 || !strings.Contains(p.Detail, id) {
		t.Fatalf("fail/delete twice: %d %+v", r.StatusCode, p)
	}
}

// TestRolesOverREST: a token sees the roles it may use, an admin all of
// them, with what each allows.
func TestRolesOverREST(t *testing.T) {
	s := shared
	type view struct {
		Name           string   `json:"name"`
		AllowedDomains []string `json:"allowed_domains"`
		MaxTTL         string   `json:"max_ttl"`
		KeyTypes       []string `json:"key_types"`
	}
	names := func(token string) map[string]view {
		t.Helper()
		var out struct {
			Roles []view `json:"roles"`
		}
		if r := s.do(t, "GET", "/v1/roles", token, nil, &out); r.StatusCode != 200 {
			t.Fatalf("roles: %d", r.StatusCode)
		}
		m := map[string]view{}
		for _, v := range out.Roles {
			m[v.Name] = v
		}
		return m
	}
	if got := names(s.tok); len(got) != 1 || got["default"].Name == "" || !containsAll(got["default"].AllowedDomains, "internal") || got["default"].MaxTTL == "" {
		t.Fatalf("ok/default token sees %+v", got)
	}
	if got := names(s.admin); len(got) < 2 || got["ci"].Name == "" {
		t.Fatalf("ok/admin sees %+v", got)
	}
	if r := s.do(t, "GET", "/v1/roles", "", nil, nil); r.StatusCode != 401 {
		t.Fatalf("fail/no token: %d", r.StatusCode)
	}
}

// TestMethodNotAllowed: a known path with the wrong method gets a 405
// problem document naming the method.
func TestMethodNotAllowed(t *testing.T) {
	var p api.Problem
	r := shared.do(t, "GET", "/v1/sign/default", shared.tok, nil, &p)
	if r.StatusCode != 405 || r.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(p.Detail, "GET") {
		t.Fatalf("%d %q %+v", r.StatusCode, r.Header.Get("Content-Type"), p)
	}
}

// TestHead: every GET resource answers HEAD too, with the GET's status and
// headers and no body (load balancers check /healthz with HEAD).
func TestHead(t *testing.T) {
	for _, path := range []string{"/healthz", "/v1/ca/roots", "/v1/ca/chain", "/v1/roles", "/metrics"} {
		r := shared.do(t, "HEAD", path, shared.admin, nil, nil)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") == "" {
			t.Fatalf("HEAD %s: %d %v", path, r.StatusCode, r.Header)
		}
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestLookupRefusals: the refusals of the read paths and of token creation,
// each a problem document that says what was wrong.
func TestLookupRefusals(t *testing.T) {
	s := shared
	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		typ, detail               string
	}{
		{"fail/CRL of an unknown issuer", "GET", "/crl/deadbeef", "", nil, 404, "notFound", "current issuer: " + s.run.CA.IssuerID()},
		{"fail/CRL of a non-hex issuer", "GET", "/crl/xyz", "", nil, 404, "notFound", "no such endpoint: GET /crl/xyz"},
		{"fail/serial not hex", "GET", "/v1/certs/zz", "", nil, 400, "malformed", "zz"},
		{"fail/unknown serial", "GET", "/v1/certs/0abc", "", nil, 404, "notFound", "no certificate with serial abc"},
		{"fail/token by a non-admin", "POST", "/v1/tokens", s.tok, map[string]any{"roles": []string{"default"}}, 403, "forbidden", "not an admin"},
		{"fail/token bad ttl", "POST", "/v1/tokens", s.admin, map[string]any{"roles": []string{"default"}, "ttl": "forever"}, 400, "malformed", `ttl "forever" is not a duration: write one like 24h, 90m or 30s`},
		{"fail/token unknown role", "POST", "/v1/tokens", s.admin, map[string]any{"roles": []string{"nope"}}, 404, "notFound", "nope"},
		{"fail/token malformed json", "POST", "/v1/tokens", s.admin, "{", 400, "malformed", "JSON"},
		{"fail/token without a role", "POST", "/v1/tokens", s.admin, map[string]any{"name": "x"}, 400, "malformed", "at least one role (or --admin)"},
		{"fail/enrollment token without names", "POST", "/v1/tokens", s.admin, map[string]any{"roles": []string{"default"}, "once": true}, 400, "malformed", "must be bound to --names"},
		{"fail/enrollment token for a name its role refuses", "POST", "/v1/tokens", s.admin, map[string]any{"roles": []string{"default"}, "once": true, "names": []string{"svc.internal", "svc.example.com"}}, 403, "rejectedIdentifier", `this enrollment token could never be used: role "default" refuses: dns "svc.example.com": not within the domains`},
		{"fail/enrollment token for two SPIFFE IDs", "POST", "/v1/tokens", s.admin, map[string]any{"roles": []string{"default"}, "once": true, "names": []string{"spiffe://internal/a", "spiffe://internal/b"}}, 403, "rejectedIdentifier", "exactly one URI SAN"},
		{"fail/enrollment token that is admin", "POST", "/v1/tokens", s.admin, map[string]any{"roles": []string{"default"}, "once": true, "admin": true, "names": []string{"svc.internal"}}, 400, "malformed", "cannot be --admin"},
		{"fail/names on a reusable token", "POST", "/v1/tokens", s.admin, map[string]any{"roles": []string{"default"}, "names": []string{"a.internal"}}, 400, "malformed", "add --once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p api.Problem
			resp := s.do(t, c.method, c.path, c.token, c.body, &p)
			if resp.StatusCode != c.status || !strings.HasSuffix(p.Type, "/"+c.typ) || !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("got %d %+v; want %d %s %q", resp.StatusCode, p, c.status, c.typ, c.detail)
			}
		})
	}
}

// TestExpiredTokensPruned: an expired token stays listed for
// api.TokenRetention, then the server deletes it by itself (a timer on the
// injected clock) and GET /v1/tokens no longer shows it; live tokens stay.
func TestExpiredTokensPruned(t *testing.T) {
	s := shared
	// Valid for an hour from a start chosen so that its retention ends
	// half an hour from now.
	start := s.clock.Now().Add(-api.TokenRetention - 30*time.Minute)
	tok, _, err := api.CreateToken(context.Background(), s.run.Store, start, s.run.CA.Roles(), api.TokenOptions{Name: "ran-out", Roles: []string{"default"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(tok, ".")
	listed := func() []string {
		t.Helper()
		var list struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		if r := s.do(t, "GET", "/v1/tokens", s.admin, nil, &list); r.StatusCode != 200 {
			t.Fatalf("list: %d", r.StatusCode)
		}
		var ids []string
		for _, it := range list.Items {
			ids = append(ids, it.ID)
		}
		return ids
	}
	time.Sleep(200 * time.Millisecond) // four ticks of the test server
	if !slices.Contains(listed(), id) {
		t.Fatal("fail/pruned within its retention")
	}
	s.advance(t, time.Hour)
	deadline := time.Now().Add(testutil.DutyWait)
	for slices.Contains(listed(), id) {
		if time.Now().After(deadline) {
			t.Fatal("ok/expired token still listed an hour after its retention ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, live := range []string{s.admin, s.tok} {
		if liveID, _, _ := strings.Cut(live, "."); !slices.Contains(listed(), liveID) {
			t.Fatalf("ok/live token %s pruned", liveID)
		}
	}
}

// TestTokenExpiresHeader: an answer to a stored token says when that
// token ends (what the CLI warns about), also when it refuses; a
// single-use token, spent by the request, gets none.
func TestTokenExpiresHeader(t *testing.T) {
	s := shared
	tok := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Name = "expiring"; o.TTL = 48 * time.Hour })
	want := s.clock.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name, method, path string
		body               any
	}{
		{"ok/issue", "POST", "/v1/issue/default", map[string]any{"common_name": "exp.internal"}},
		{"ok/roles", "GET", "/v1/roles", nil},
		{"fail/issue refused", "POST", "/v1/issue/default", map[string]any{"common_name": "exp.example"}},
	} {
		if got := s.do(t, c.method, c.path, tok, c.body, nil).Header.Get(api.TokenExpiresHeader); got != want {
			t.Errorf("%s: %s %q, want %q", c.name, api.TokenExpiresHeader, got, want)
		}
	}
	admin := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Name, o.Admin, o.TTL = "expiring-admin", true, 72*time.Hour })
	if got := s.do(t, "GET", "/v1/certs?limit=1", admin, nil, nil).Header.Get(api.TokenExpiresHeader); got != s.clock.Now().Add(72*time.Hour).UTC().Format(time.RFC3339) {
		t.Errorf("ok/admin listing: %s %q", api.TokenExpiresHeader, got)
	}
	once := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Once, o.Names = true, []string{"once.internal"} })
	if resp := s.do(t, "POST", "/v1/issue/default", once, map[string]any{"common_name": "once.internal"}, nil); resp.StatusCode != 201 || resp.Header.Get(api.TokenExpiresHeader) != "" {
		t.Fatalf("single-use token: %d, %q", resp.StatusCode, resp.Header.Get(api.TokenExpiresHeader))
	}
}
