package api_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"pkid/api"
	"pkid/internal/testutil"
)

// testIssuer is an OIDC issuer on loopback HTTPS: discovery and a JWKS
// whose keys the test can rotate, which can be taken down (all of it, or
// only its JWKS), and which counts what it is asked.
type testIssuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey // kid -> key, published in the JWKS

	down, keysDown  atomic.Bool
	discovery, jwks atomic.Int32 // requests served or refused
	// cert, once set, replaces httptest's certificate (the issuer's TLS
	// moved to another CA).
	cert atomic.Pointer[tls.Certificate]
}

func newIssuer(t *testing.T) *testIssuer {
	is := &testIssuer{keys: map[string]*rsa.PrivateKey{}}
	is.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			is.discovery.Add(1)
			if is.down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/jwks":
			is.jwks.Add(1)
			if is.down.Load() || is.keysDown.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
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
	is.srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if c := is.cert.Load(); c != nil {
			return &tls.Config{Certificates: []tls.Certificate{*c}}, nil
		}
		return nil, nil
	}}
	is.srv.StartTLS()
	t.Cleanup(is.srv.Close)
	is.rotate(t, "k1")
	return is
}

// moveCA gives the issuer a certificate from a new self-signed CA, drops
// the connections made under the old one, and returns the new CA in PEM.
func (is *testIssuer) moveCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "renewed issuer CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	is.cert.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
	is.srv.CloseClientConnections()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
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

// serveOIDCRole starts a server whose role "ci" accepts tokens from is
// with these claim conditions, trusting is's TLS through a ca_file it
// returns.
func serveOIDCRole(t *testing.T, is *testIssuer, claims string) (*testServer, string) {
	caFile := filepath.Join(t.TempDir(), "issuer.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}), 0o644)
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		return testutil.AddRole(y, "ci", ciRole+`
oidc: {issuer: "`+is.srv.URL+`", audience: pkid, ca_file: "`+caFile+`", claims: `+claims+`}`)
	})
	return startServerAt(t, dir, ports, time.Now()), caFile
}

func TestOIDC(t *testing.T) {
	is := newIssuer(t)
	s, _ := serveOIDCRole(t, is, `{repository: org/app, ref: "refs/heads/*"}`)
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
	t.Run("fail/made-up key ids cost the issuer one fetch", func(t *testing.T) {
		s.clock.Advance(api.KeyRefetchGap)
		before := is.jwks.Load()
		for i := range 20 {
			var p api.Problem
			resp := s.do(t, "POST", "/v1/issue/ci", mint(t, stranger, fmt.Sprintf("made-up-%d", i), good()), body, &p)
			if resp.StatusCode != 401 || !strings.Contains(p.Detail, fmt.Sprintf(`key id "made-up-%d", which the issuer does not publish`, i)) {
				t.Fatalf("%d %+v", resp.StatusCode, p)
			}
		}
		if n := is.jwks.Load() - before; n != 1 {
			t.Fatalf("20 tokens with unknown key ids made pkid fetch the issuer's keys %d times, want 1", n)
		}
	})
	t.Run("ok/key rotated at the issuer", func(t *testing.T) {
		k2 := is.rotate(t, "k2")
		var p api.Problem
		if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k2, "k2", good()), body, &p); resp.StatusCode != 401 || !strings.Contains(p.Detail, `"k2", which the issuer does not publish`) {
			t.Fatalf("new key within the refetch gap: %d %+v", resp.StatusCode, p)
		}
		s.clock.Advance(api.KeyRefetchGap)
		if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k2, "k2", good()), body, &r); resp.StatusCode != 201 {
			t.Fatalf("token signed by the rotated key: %d", resp.StatusCode)
		}
		if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k1, "k1", good()), body, nil); resp.StatusCode != 401 {
			t.Fatalf("token signed by the retired key: %d", resp.StatusCode)
		}
	})
}

// TestOIDCCAFileRenewed: the issuer's TLS moves to a new CA and rotates
// its signing key; the operator replaces ca_file (same path) and reloads.
// The reloaded role trusts the new roots: its tokens are accepted, where
// a trust kept by ca_file's path went on fetching keys with the old
// roots until a restart.
func TestOIDCCAFileRenewed(t *testing.T) {
	is := newIssuer(t)
	s, caFile := serveOIDCRole(t, is, `{repository: org/app}`)
	defer s.stop()
	now := time.Now()
	claims := map[string]any{"iss": is.srv.URL, "aud": "pkid", "sub": "repo:org/app", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "repository": "org/app"}
	body := map[string]any{"common_name": "job.ci.internal"}
	is.mu.Lock()
	k1 := is.keys["k1"]
	is.mu.Unlock()
	if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k1, "k1", claims), body, nil); resp.StatusCode != 201 {
		t.Fatalf("ok/before the move: %d", resp.StatusCode)
	}

	newCA := is.moveCA(t)
	k2 := is.rotate(t, "k2")
	s.clock.Advance(api.KeyRefetchGap)
	var p api.Problem
	if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k2, "k2", claims), body, &p); resp.StatusCode != 503 || !strings.Contains(p.Detail, "could not be fetched") {
		t.Fatalf("fail/issuer on a CA ca_file does not hold yet: %d %+v", resp.StatusCode, p)
	}
	if err := os.WriteFile(caFile, newCA, 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	api.ReloadRoles(s.run.Config, s.run.CA, slog.New(slog.NewTextHandler(&log, nil)))
	if !strings.Contains(log.String(), "changed=[ci]") {
		t.Fatalf("reload after ca_file was replaced:\n%s", log.String())
	}
	if resp := s.do(t, "POST", "/v1/issue/ci", mint(t, k2, "k2", claims), body, &p); resp.StatusCode != 201 {
		t.Fatalf("ok/after ca_file was replaced and reloaded: %d %+v", resp.StatusCode, p)
	}
}

// TestOIDCIssuerTrouble: an issuer that is down, or whose key set is,
// gets 503 with Retry-After (the token is not at fault), is asked again
// only after the wait, and is used again once it is back; an issuer that
// hangs holds up only the tokens for it.
func TestOIDCIssuerTrouble(t *testing.T) {
	is := newIssuer(t)
	asked := make(chan struct{}, 1)
	hung := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer hung.Close()
	caFile := filepath.Join(t.TempDir(), "issuers.pem")
	os.WriteFile(caFile, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hung.Certificate().Raw})...), 0o644)
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		y = testutil.AddRole(y, "ci", ciRole+`
oidc: {issuer: "`+is.srv.URL+`", audience: pkid, ca_file: "`+caFile+`", claims: {repository: org/app}}`)
		return testutil.AddRole(y, "hung", ciRole+`
oidc: {issuer: "`+hung.URL+`", audience: pkid, ca_file: "`+caFile+`", claims: {repository: org/app}}`)
	})
	s := startServerAt(t, dir, ports, time.Now())
	defer s.stop()
	now := time.Now()
	claims := map[string]any{"iss": is.srv.URL, "aud": "pkid", "sub": "repo:org/app", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "repository": "org/app"}
	is.mu.Lock()
	token := mint(t, is.keys["k1"], "k1", claims)
	is.mu.Unlock()
	body := map[string]any{"common_name": "job.ci.internal"}
	unavailable := func(t *testing.T, what, detail string) {
		t.Helper()
		var p api.Problem
		resp := s.do(t, "POST", "/v1/issue/ci", token, body, &p)
		if resp.StatusCode != 503 || !strings.Contains(p.Detail, detail) || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d Retry-After %q %+v", what, resp.StatusCode, resp.Header.Get("Retry-After"), p)
		}
	}

	is.down.Store(true)
	unavailable(t, "fail/issuer down", "the OIDC issuer "+is.srv.URL+" could not be asked for its configuration")
	unavailable(t, "fail/issuer down, asked again at once", "could not be asked")
	if n := is.discovery.Load(); n != 1 {
		t.Fatalf("discovery asked %d times within the retry wait, want 1", n)
	}
	is.down.Store(false)
	is.keysDown.Store(true)
	s.clock.Advance(api.DiscoveryRetry)
	unavailable(t, "fail/key set down", "the OIDC issuer's keys ("+is.srv.URL+"/jwks) could not be fetched")
	is.keysDown.Store(false)
	unavailable(t, "fail/key set back, within the refetch gap", "could not be fetched")
	if n := is.jwks.Load(); n != 1 {
		t.Fatalf("key set fetched %d times within the refetch gap, want 1", n)
	}
	s.clock.Advance(api.KeyRefetchGap)
	if resp := s.do(t, "POST", "/v1/issue/ci", token, body, nil); resp.StatusCode != 201 {
		t.Fatalf("ok/issuer back: %d", resp.StatusCode)
	}

	// A token for the hung issuer waits on its discovery; meanwhile a
	// token for the working one is answered.
	hungDone := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.base+"/v1/issue/hung", strings.NewReader(`{"common_name":"job.ci.internal"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := s.client.Do(req)
		if err != nil {
			hungDone <- 0
			return
		}
		resp.Body.Close()
		hungDone <- resp.StatusCode
	}()
	<-asked
	if resp := s.do(t, "POST", "/v1/issue/ci", token, body, nil); resp.StatusCode != 201 {
		t.Fatalf("ok/other issuer while one hangs: %d", resp.StatusCode)
	}
	select {
	case code := <-hungDone:
		t.Fatalf("the hung issuer's request ended (%d) before the other issuer's: it waited on it", code)
	default:
	}
	hung.CloseClientConnections()
	if code := <-hungDone; code != 503 {
		t.Fatalf("fail/hung issuer: %d, want 503", code)
	}
}
