package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"pkid/api"
	"pkid/internal/testutil"
)

// testIssuer is an OIDC issuer on loopback HTTPS: discovery and a JWKS
// whose keys the test can rotate.
type testIssuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey // kid -> key, published in the JWKS
}

func newIssuer(t *testing.T) *testIssuer {
	is := &testIssuer{keys: map[string]*rsa.PrivateKey{}}
	is.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/jwks":
			is.mu.Lock()
			var set jose.JSONWebKeySet
			for kid, k := range is.keys {
				set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "RS256", Use: "sig"})
			}
			is.mu.Unlock()
			json.NewEncoder(w).Encode(set)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(is.srv.Close)
	is.rotate(t, "k1")
	return is
}

func (is *testIssuer) rotate(t *testing.T, kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	is.keys = map[string]*rsa.PrivateKey{kid: k}
	is.mu.Unlock()
	return k
}

func mint(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestOIDC(t *testing.T) {
	is := newIssuer(t)
	caFile := filepath.Join(t.TempDir(), "issuer.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}), 0o644)
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		return testutil.AddRole(y, "ci", ciRole+`
oidc: {issuer: "`+is.srv.URL+`", audience: pkid, ca_file: "`+caFile+`", claims: {repository: org/app, ref: "refs/heads/*"}}`)
	})
	s := startServerAt(t, dir, ports, time.Now())
	defer s.stop()
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": is.srv.URL, "aud": "pkid", "sub": "repo:org/app:ref:refs/heads/main", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"repository": "org/app", "ref": "refs/heads/main", "environment": "prod"}
	}
	body := map[string]any{"common_name": "job.ci.internal"}
	is.mu.Lock()
	k1 := is.keys["k1"]
	is.mu.Unlock()

	var r api.IssueResponse
	if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k1, "k1", good()), body, &r); resp.StatusCode != 201 {
		t.Fatalf("ok/matching token: %d", resp.StatusCode)
	}
	if s.do(t, "POST", "/v1/issue/default", mint(t, k1, "k1", good()), body, nil).StatusCode != 401 {
		t.Fatal("fail/role without oidc accepted an OIDC token")
	}
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	none := func() string {
		h := `{"alg":"none","typ":"JWT"}`
		c, _ := json.Marshal(good())
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(h)) + "." + enc(c) + "."
	}
	cases := []struct {
		name, token string
		status      int
		detail      string
	}{
		{"fail/expired", mint(t, k1, "k1", with("exp", now.Add(-time.Minute).Unix())), 401, "expired"},
		{"fail/wrong audience", mint(t, k1, "k1", with("aud", "someone-else")), 401, "audience"},
		{"fail/wrong issuer", mint(t, k1, "k1", with("iss", "https://evil.example")), 401, "issued by a different provider"},
		{"fail/unsigned alg none", none(), 401, "OIDC token refused"},
		{"fail/unknown key", mint(t, stranger, "k1", good()), 401, "OIDC token refused"},
		{"fail/claims mismatch", mint(t, k1, "k1", with("repository", "org/evil")), 403, `"repository" is "org/evil"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p api.Problem
			if resp := s.do(t, "POST", "/v1/issue/ci", c.token, body, &p); resp.StatusCode != c.status || !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("%d %+v", resp.StatusCode, p)
			}
		})
	}
	t.Run("ok/key rotated at the issuer", func(t *testing.T) {
		k2 := is.rotate(t, "k2")
		if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k2, "k2", good()), body, &r); resp.StatusCode != 201 {
			t.Fatalf("token signed by the rotated key: %d", resp.StatusCode)
		}
		if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k1, "k1", good()), body, nil); resp.StatusCode != 401 {
			t.Fatalf("token signed by the retired key: %d", resp.StatusCode)
		}
	})
}
