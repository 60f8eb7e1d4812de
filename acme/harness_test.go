package acme_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/acme"
	"pkid/api"
	"pkid/ca"
	"pkid/config"
	"pkid/internal/testserver"
	"pkid/internal/testutil"
	"pkid/store"
)

// env is the package's one real pkid server, with http-01 validated on a
// free loopback port and test names mapped to 127.0.0.1 in acme.hosts.
type env struct {
	clock    *ca.FakeClock
	eab      *acme.EAB
	dns      *testDNS
	tlsPort  int
	run      *api.Running
	base     string
	dir      string
	httpPort int
	client   *http.Client
	rootPEM  string
}

var srv *env

var strictRole = `
allowed_domains: [strict.internal]
allow_subdomains: true
allow_bare_domains: false
allow_wildcards: false
allowed_ip_ranges: []
allowed_uri_patterns: []
default_ttl: 1h
max_ttl: 2h
key_types: [ec-p256]
ext_key_usage: [server_auth]
renewal: {enabled: false, max_age: 1h}
revocation_pointers: true
acme: {enabled: true, challenges: [http-01], require_eab: false}`

func TestMain(m *testing.M) {
	tb := &mainTB{}
	ports := testutil.Listen(tb)
	hp := testutil.FreeAddr(tb)
	_, portText, _ := net.SplitHostPort(hp)
	port, _ := strconv.Atoi(portText)
	_, tlsText, _ := net.SplitHostPort(testutil.FreeAddr(tb))
	tlsPort, _ := strconv.Atoi(tlsText)
	dnsSrv := startDNS(tb)
	defer dnsSrv.stop()
	dir := testutil.CADir(tb, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string {
		y = strings.Replace(y, "  http01_port: 80\n", "  http01_port: "+portText+"\n", 1)
		y = strings.Replace(y, "  tlsalpn01_port: 443\n", "  tlsalpn01_port: "+tlsText+"\n  authz_reuse: 1h\n", 1)
		y = strings.Replace(y, "  resolver: \"\"\n", "  resolver: \""+dnsSrv.addr+"\"\n", 1)
		y = testutil.AddRole(y, "wild", strings.NewReplacer("strict.internal", "wild.internal", "allow_wildcards: false", "allow_wildcards: true",
			"allowed_ip_ranges: []", "allowed_ip_ranges: [127.0.0.0/8, \"::1/128\"]", "challenges: [http-01]", "challenges: [http-01, dns-01, tls-alpn-01]").Replace(strictRole))
		y = testutil.AddRole(y, "eab", strings.NewReplacer("strict.internal", "eab.internal", "require_eab: false", "require_eab: true").Replace(strictRole))
		y = testutil.AddRole(y, "limited", strings.NewReplacer("strict.internal", "limited.internal", "acme: {", "rate_limit: {certificates: 1, per: 1h}\nacme: {").Replace(strictRole))
		y = strings.Replace(y, "  hosts: {}\n", "  hosts: {a.internal: 127.0.0.1, b.internal: 127.0.0.1, c.internal: 127.0.0.1, web.strict.internal: 127.0.0.1, x.limited.internal: 127.0.0.1, wrong.internal: 127.0.0.1, down.internal: 127.0.0.1}\n", 1)
		y = testutil.AddRole(y, "strict", strictRole)
		y = testutil.AddRole(y, "bare", strings.NewReplacer("strict.internal", "localhost", "allow_bare_domains: false", "allow_bare_domains: true").Replace(strictRole))
		return testutil.AddRole(y, "noacme", strings.Replace(strictRole, "acme: {enabled: true", "acme: {enabled: false", 1))
	})
	cfg, err := config.Load(filepath.Join(dir, "pkid.yaml"))
	if err != nil {
		panic(err)
	}
	// The server runs on a fake clock that tests may move forward; every
	// client here verifies TLS on the same clock.
	clock := ca.NewFakeClock(time.Now())
	ts, err := testserver.Start(cfg, ports, clock)
	if err != nil {
		panic(err)
	}
	run := ts.Run
	eab, err := api.NewEAB(cfg, run.Store.(store.ACMEStore), ca.SystemClock{})
	if err != nil {
		panic(err)
	}
	srv = &env{eab: eab, dns: dnsSrv, tlsPort: tlsPort, run: run, base: ts.Base, dir: dir, httpPort: port, rootPEM: string(ca.PEMCert(run.CA.Root().Raw)),
		clock: clock, client: ts.Client}
	code := m.Run()
	ts.Stop()
	tb.cleanup()
	os.Exit(code)
}

type mainTB struct {
	testing.TB
	dirs []string
}

func (m *mainTB) Helper()                   {}
func (m *mainTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (m *mainTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (m *mainTB) Cleanup(func())            {}
func (m *mainTB) TempDir() string {
	d, _ := os.MkdirTemp("", "pkid-acme")
	m.dirs = append(m.dirs, d)
	return d
}
func (m *mainTB) cleanup() {
	for _, d := range m.dirs {
		os.RemoveAll(d)
	}
}

func (e *env) dirURL(role string) string { return e.base + "/acme/" + role + "/directory" }

// rawClient speaks ACME by hand, so tests can send what no real client
// would.
type rawClient struct {
	t    *testing.T
	e    *env
	role string
	key  crypto.Signer
	kid  string
	dir  map[string]any
	http *http.Client // srv.client, or one from another loopback address
}

func newRaw(t *testing.T, role string) *rawClient {
	t.Helper()
	return newRawFrom(t, role, nil)
}

// newRawFrom is newRaw connecting from a loopback address of its own
// (127.0.0.2 and up: the CA counts registrations per client address),
// or from the package client's when from is nil.
func newRawFrom(t *testing.T, role string, from net.IP) *rawClient {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &rawClient{t: t, e: srv, role: role, key: key, http: srv.client}
	if from != nil {
		tr := srv.client.Transport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}).DialContext
		c.http = &http.Client{Timeout: srv.client.Timeout, Transport: tr}
		t.Cleanup(c.http.CloseIdleConnections)
	}
	resp, err := c.http.Get(srv.dirURL(role))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&c.dir)
	return c
}

func (c *rawClient) url(name string) string { return c.dir[name].(string) }

func (c *rawClient) nonce() string {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodHead, c.url("newNonce"), nil)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Replay-Nonce")
}

// sign builds a flattened JWS; kid "" embeds the jwk.
func sign(t *testing.T, key crypto.Signer, kid, nonce, url string, payload []byte) []byte {
	t.Helper()
	alg := jose.EdDSA
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		alg = map[int]jose.SignatureAlgorithm{256: jose.ES256, 384: jose.ES384, 521: jose.ES512}[pub.Curve.Params().BitSize]
	case *rsa.PublicKey:
		alg = jose.RS256
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": url}}
	if nonce != "" {
		opts.ExtraHeaders[jose.HeaderKey("nonce")] = nonce
	}
	if kid != "" {
		opts.ExtraHeaders[jose.HeaderKey("kid")] = kid
	} else {
		opts.EmbedJWK = true
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	// Flattened JSON with "payload" always present ("" for POST-as-GET),
	// as real ACME clients send it.
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(compact, ".")
	out, _ := json.Marshal(map[string]string{"protected": parts[0], "payload": parts[1], "signature": parts[2]})
	return out
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (a answer) problem(t *testing.T) (string, string) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	a.json(t, &p)
	return strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:"), p.Detail
}

func (c *rawClient) postRaw(url string, body []byte) answer {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/jose+json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Replay-Nonce") == "" {
		c.t.Errorf("no Replay-Nonce on %s (%d)", url, resp.StatusCode)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// post signs payload (nil = POST-as-GET) with the account key.
func (c *rawClient) post(url string, payload any) answer {
	c.t.Helper()
	var raw []byte
	if payload != nil {
		raw, _ = json.Marshal(payload)
	}
	return c.postRaw(url, sign(c.t, c.key, c.kid, c.nonce(), url, raw))
}

func (c *rawClient) register() {
	c.t.Helper()
	a := c.post(c.url("newAccount"), map[string]any{"termsOfServiceAgreed": true, "contact": []string{"mailto:ops@example.com"}})
	if a.status != 201 {
		c.t.Fatalf("newAccount: %d %s", a.status, a.body)
	}
	c.kid = a.header.Get("Location")
}

type orderObj struct {
	Status         string   `json:"status"`
	Authorizations []string `json:"authorizations"`
	Finalize       string   `json:"finalize"`
	Certificate    string   `json:"certificate"`
	Identifiers    []struct {
		Type, Value string
	} `json:"identifiers"`
}

type authzObj struct {
	Status     string `json:"status"`
	Wildcard   bool   `json:"wildcard"`
	Identifier struct{ Type, Value string }
	Challenges []struct {
		Type, URL, Token, Status string
		Error                    *struct{ Type, Detail string }
	} `json:"challenges"`
}

func (c *rawClient) newOrder(names ...string) (string, orderObj) {
	c.t.Helper()
	var ids []map[string]string
	for _, n := range names {
		typ := "dns"
		if net.ParseIP(n) != nil {
			typ = "ip"
		}
		ids = append(ids, map[string]string{"type": typ, "value": n})
	}
	a := c.post(c.url("newOrder"), map[string]any{"identifiers": ids})
	if a.status != 201 {
		c.t.Fatalf("newOrder: %d %s", a.status, a.body)
	}
	var o orderObj
	a.json(c.t, &o)
	return a.header.Get("Location"), o
}

func (c *rawClient) thumbprint() string {
	jwk := jose.JSONWebKey{Key: c.key.Public()}
	tp, _ := jwk.Thumbprint(crypto.SHA256)
	return base64.RawURLEncoding.EncodeToString(tp)
}

// serveHTTP01 answers every challenge token with answer(token) on the
// validation port until the returned stop is called.
func serveHTTP01(t *testing.T, answer func(token string) string) func() {
	t.Helper()
	return serveHTTP01Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, answer(strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")))
	}))
}

// serveKeyAuth answers http-01 on the validation port with c's key
// authorization for whatever token is asked, until the returned stop.
func (c *rawClient) serveKeyAuth() func() {
	c.t.Helper()
	return serveHTTP01(c.t, func(tok string) string { return tok + "." + c.thumbprint() })
}

// serveHTTP01Handler serves h on the validation port until the returned
// stop is called.
func serveHTTP01Handler(t *testing.T, h http.Handler) func() {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(srv.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l)
	return func() { hs.Close() }
}

// waitAuthz polls an authorization until it leaves pending.
func (c *rawClient) waitAuthz(url string) authzObj {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var az authzObj
		a := c.post(url, nil)
		a.json(c.t, &az)
		if az.Status != "pending" {
			return az
		}
		if a.header.Get("Retry-After") != "1" {
			c.t.Fatalf("pending authz without Retry-After: 1 (%q)", a.header.Get("Retry-After"))
		}
		if time.Now().After(deadline) {
			c.t.Fatal("authorization still pending")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveHTTP01Redirect answers every challenge with a redirect to target.
func serveHTTP01Redirect(t *testing.T, target string) func() {
	t.Helper()
	return serveHTTP01Handler(t, http.RedirectHandler(target, http.StatusFound))
}

// errorOf is the problem detail recorded in the challenge of type typ.
func (a authzObj) errorOf(typ string) string {
	_, d := a.problemOf(typ)
	return d
}

// problemOf is the type and detail of a challenge's recorded error.
func (a authzObj) problemOf(typ string) (string, string) {
	for _, ch := range a.Challenges {
		if ch.Type == typ && ch.Error != nil {
			return ch.Error.Type, ch.Error.Detail
		}
	}
	return "", ""
}

// binder makes external account bindings with one EAB key of a role.
type binder struct {
	t   *testing.T
	kid string
	mac []byte
}

func newBinder(t *testing.T, role string) *binder {
	t.Helper()
	kid, macKey, err := srv.eab.Create(context.Background(), role)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := base64.RawURLEncoding.DecodeString(macKey)
	if err != nil {
		t.Fatal(err)
	}
	return &binder{t: t, kid: kid, mac: mac}
}

// bind is an HS256 JWS by the MAC key over payload, with kid and url,
// and extra protected headers.
func (b *binder) bind(url string, payload []byte, extra map[jose.HeaderKey]any) json.RawMessage {
	b.t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"kid": b.kid, "url": url}}
	for k, v := range extra {
		opts.ExtraHeaders[k] = v
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: b.mac}, opts)
	if err != nil {
		b.t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		b.t.Fatal(err)
	}
	return json.RawMessage(jws.FullSerialize())
}

// jwkOf is k's public key as a JWK: what a binding binds.
func jwkOf(k crypto.Signer) []byte {
	b, _ := (&jose.JSONWebKey{Key: k.Public()}).MarshalJSON()
	return b
}
