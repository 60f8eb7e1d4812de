package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store"
)

func TestSignEveryKeyType(t *testing.T) {
	s := shared
	for _, kt := range testutil.KeyTypes {
		t.Run("ok/"+kt, func(t *testing.T) {
			var r api.IssueResponse
			resp := s.do(t, "POST", "/v1/sign/default", s.tok, map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, kt), "svc.internal"), "ttl": "2h"}, &r)
			if resp.StatusCode != 201 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// ~3 KB with the chain: sent with its length, not chunked.
			if resp.ContentLength < 2048 || len(resp.TransferEncoding) != 0 {
				t.Errorf("Content-Length %d, Transfer-Encoding %v", resp.ContentLength, resp.TransferEncoding)
			}
			leaf := s.verify(t, &r, x509.ExtKeyUsageServerAuth)
			if leaf.DNSNames[0] != "svc.internal" || !r.NotAfter.Equal(leaf.NotAfter) || leaf.NotAfter.Sub(leaf.NotBefore) != 2*time.Hour+time.Minute {
				t.Fatalf("leaf %v %s %s", leaf.DNSNames, leaf.NotBefore, leaf.NotAfter)
			}
			testutil.LintCertificate(t, leaf.Raw)
			var v api.CertView
			if s.do(t, "GET", "/v1/certs/"+strings.ToUpper(r.Serial), "", nil, &v).StatusCode != 200 || v.Serial != r.Serial || v.Status != "valid" || v.Role != "default" {
				t.Fatalf("record %+v", v)
			}
		})
	}
}

func TestIssueEveryKeyType(t *testing.T) {
	s := shared
	for _, kt := range []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048"} {
		t.Run("ok/"+kt, func(t *testing.T) {
			var r api.IssueResponse
			resp := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": "gen.internal", "ip_addresses": []string{"127.0.0.2"}, "uris": []string{"spiffe://internal/ns/x"}, "key_type": kt, "ttl": "1h"}, &r)
			if resp.StatusCode != 201 || r.PrivateKey == "" {
				t.Fatalf("status %d", resp.StatusCode)
			}
			leaf := s.verify(t, &r, x509.ExtKeyUsageClientAuth)
			if _, err := tls.X509KeyPair([]byte(r.Certificate), []byte(r.PrivateKey)); err != nil {
				t.Fatalf("key does not match: %v", err)
			}
			if len(leaf.IPAddresses) != 1 || len(leaf.URIs) != 1 || leaf.DNSNames[0] != "gen.internal" {
				t.Fatalf("SANs %v %v %v", leaf.DNSNames, leaf.IPAddresses, leaf.URIs)
			}
		})
	}
}

// TestIssueDefaultKeyType: an issue request without key_type gets P-256
// where the role allows it, and otherwise the first key type the role
// names, rather than a refusal of a key nobody asked for.
func TestIssueDefaultKeyType(t *testing.T) {
	s := shared
	for _, c := range []struct {
		role, token, name, want string
	}{
		{"default", s.tok, "p256.internal", "ec-p256"},
		{"edonly", tokenFor(t, s, "edonly"), "first.ed.internal", "ed25519"},
	} {
		var r api.IssueResponse
		if resp := s.do(t, "POST", "/v1/issue/"+c.role, c.token, map[string]any{"common_name": c.name}, &r); resp.StatusCode != 201 {
			t.Fatalf("%s: status %d", c.role, resp.StatusCode)
		}
		if kt, _ := policies.KeyTypeOf(parseCert(t, r.Certificate).PublicKey); kt != c.want {
			t.Fatalf("%s: a %s key, want %s", c.role, kt, c.want)
		}
	}
}

// TestNotAfterIsTheCertificates: a TTL with a fraction of a second gives
// the certificate's own notAfter (whole seconds) in the answer and in the
// record, not a time the certificate does not carry.
func TestNotAfterIsTheCertificates(t *testing.T) {
	s := shared
	var r api.IssueResponse
	if resp := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": "frac.internal", "ttl": "90.5s"}, &r); resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	leaf := parseCert(t, r.Certificate)
	if !r.NotAfter.Equal(leaf.NotAfter) || !r.NotBefore.Equal(leaf.NotBefore) {
		t.Fatalf("answer says %s – %s, the certificate %s – %s", r.NotBefore, r.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 90*time.Second+policies.Backdate {
		t.Fatalf("validity %s", got)
	}
	rec, err := s.run.Store.GetCertificate(context.Background(), r.Serial)
	if err != nil || !rec.NotAfter.Equal(leaf.NotAfter) {
		t.Fatalf("record %v, %v; certificate notAfter %s", rec, err, leaf.NotAfter)
	}
}

func TestListPagination(t *testing.T) {
	s := shared
	for range 5 {
		var r api.IssueResponse
		if s.do(t, "POST", "/v1/sign/ci", s.admin, map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "job.ci.internal")}, &r).StatusCode != 403 {
			t.Fatal("admin token without the ci role signed for ci")
		}
	}
	ciTok := tokenFor(t, s, "ci")
	want := map[string]bool{}
	for range 5 {
		var r api.IssueResponse
		if s.do(t, "POST", "/v1/sign/ci", ciTok, map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "job.ci.internal")}, &r).StatusCode != 201 {
			t.Fatal("ci sign failed")
		}
		want[r.Serial] = true
	}
	got := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		var page struct {
			Items      []api.CertView `json:"items"`
			NextCursor string         `json:"next_cursor"`
		}
		if s.do(t, "GET", "/v1/certs?role=ci&limit=2&cursor="+cursor, s.admin, nil, &page).StatusCode != 200 {
			t.Fatal("list failed")
		}
		for _, it := range page.Items {
			if it.Role != "ci" || got[it.Serial] {
				t.Fatalf("bad item %+v", it)
			}
			got[it.Serial] = true
		}
		if page.NextCursor == "" {
			// Full pages of 2 and the rest on the last (the shared server
			// may hold ci certificates of an earlier -count too).
			if pages+1 != (len(got)+1)/2 {
				t.Fatalf("%d pages for %d items at 2 per page", pages+1, len(got))
			}
			break
		}
		cursor = page.NextCursor
	}
	for sn := range want {
		if !got[sn] {
			t.Fatalf("serial %s not listed (%d listed)", sn, len(got))
		}
	}
	// By name, typed as people do: upper case, a trailing dot.
	name := fmt.Sprintf("named-%d.ci.internal", time.Now().UnixNano())
	var named api.IssueResponse
	if s.do(t, "POST", "/v1/sign/ci", ciTok, map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), name)}, &named).StatusCode != 201 {
		t.Fatal("ci sign failed")
	}
	var byName struct {
		Items []api.CertView `json:"items"`
	}
	if s.do(t, "GET", "/v1/certs?status=valid&name="+url.QueryEscape(strings.ToUpper(name)+"."), s.admin, nil, &byName).StatusCode != 200 ||
		len(byName.Items) != 1 || byName.Items[0].Serial != named.Serial {
		t.Fatalf("ok/name filter: %+v, want only %s", byName.Items, named.Serial)
	}
	// By requester: what one token got (a leaked one, say).
	leaky := fmt.Sprintf("leaky-%d", time.Now().UnixNano())
	leakyTok := tokenFor(t, s, "ci", func(o *api.TokenOptions) { o.Name = leaky })
	var got1 api.IssueResponse
	if s.do(t, "POST", "/v1/sign/ci", leakyTok, map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "leaky.ci.internal")}, &got1).StatusCode != 201 {
		t.Fatal("ci sign failed")
	}
	var byReq struct {
		Items []api.CertView `json:"items"`
	}
	if s.do(t, "GET", "/v1/certs?requester="+url.QueryEscape("token:"+leaky), s.admin, nil, &byReq).StatusCode != 200 ||
		len(byReq.Items) != 1 || byReq.Items[0].Serial != got1.Serial {
		t.Fatalf("ok/requester filter: %+v, want only %s", byReq.Items, got1.Serial)
	}
	var p api.Problem
	if s.do(t, "GET", "/v1/certs", s.tok, nil, &p).StatusCode != 403 {
		t.Fatal("non-admin listed certificates")
	}
	// The contract's form with every filter empty lists; a query that
	// would silently list more than asked for is refused.
	if resp := s.do(t, "GET", "/v1/certs?role=&status=&limit=&cursor=", s.admin, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("ok/empty filters: %d", resp.StatusCode)
	}
	for _, c := range []struct{ name, query, detail string }{
		{"fail/unknown parameter", "stauts=revoked", `unknown query parameter "stauts" (accepted: role, status, name, requester, limit, cursor)`},
		{"fail/repeated parameter", "role=ci&role=default", `"role" is given 2 times`},
		{"fail/bad escape", "limit=%zz", "does not parse"},
		{"fail/bad status", "status=held", "want valid, revoked or expired"},
		{"fail/bad limit", "limit=1001", "want 1-1000"},
		{"fail/bad cursor", "cursor=zzzz", "not a next_cursor this server gave"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p api.Problem
			if resp := s.do(t, "GET", "/v1/certs?"+c.query, s.admin, nil, &p); resp.StatusCode != 400 || !strings.HasSuffix(p.Type, "/malformed") || !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("%d %+v, want 400 malformed with %q", resp.StatusCode, p, c.detail)
			}
		})
	}
}

func tokenFor(t testing.TB, s *testServer, role string, opts ...func(*api.TokenOptions)) string {
	t.Helper()
	o := api.TokenOptions{Name: "t-" + role, Roles: []string{role}}
	for _, f := range opts {
		f(&o)
	}
	var out struct {
		Token string `json:"token"`
	}
	body := map[string]any{"name": o.Name, "roles": o.Roles, "once": o.Once, "names": o.Names}
	if o.TTL != 0 {
		body["ttl"] = o.TTL.String()
	}
	if r := s.do(t, "POST", "/v1/tokens", s.admin, body, &out); r.StatusCode != 201 {
		t.Fatalf("create token: %d", r.StatusCode)
	}
	return out.Token
}

func TestRefusals(t *testing.T) {
	s := shared
	key := testutil.LeafKey(t, "ec-p256")
	good := map[string]string{"csr": csrPEM(t, key, "a.internal")}
	expired := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.TTL = time.Minute })
	s.clock.Advance(2 * time.Minute)
	defer s.clock.Advance(0)
	rsaDER, _ := pem.Decode([]byte(csrPEM(t, testutil.LeafKey(t, "rsa-2048"), "a.internal")))
	hugeRSA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: testutil.WithRSAModulus(t, rsaDER.Bytes, 100_000)}))
	tampered := []byte(csrPEM(t, key, "a.internal"))
	blk := strings.Split(string(tampered), "\n")
	blk[len(blk)-4] = strings.Repeat("A", len(blk[len(blk)-4]))
	cases := []struct {
		name, path, token string
		body              any
		status            int
		typ, detail       string
	}{
		{"fail/no token", "/v1/sign/default", "", good, 401, "unauthorized", "missing credentials"},
		{"fail/unknown token", "/v1/sign/default", "0011223344556677.nope", good, 401, "unauthorized", "unknown or revoked"},
		{"fail/malformed token", "/v1/sign/default", "garbage", good, 401, "unauthorized", "malformed token"},
		{"fail/wrong secret", "/v1/sign/default", strings.Split(s.tok, ".")[0] + ".wrong", good, 401, "unauthorized", "unknown or revoked"},
		{"fail/expired token", "/v1/sign/default", expired, good, 401, "unauthorized", "expired"},
		{"fail/other role", "/v1/sign/ci", s.tok, good, 403, "forbidden", "may not use role \"ci\""},
		{"fail/unknown role", "/v1/sign/nope", s.tok, good, 404, "notFound", "unknown role"},
		{"fail/outside policy", "/v1/sign/default", s.tok, map[string]string{"csr": csrPEM(t, key, "evil.com")}, 403, "rejectedIdentifier", "subdomains of internal"},
		{"fail/ttl over max", "/v1/sign/default", s.tok, map[string]string{"csr": good["csr"], "ttl": "1000h"}, 403, "forbidden", "max_ttl of 168h"},
		{"fail/bad ttl", "/v1/sign/default", s.tok, map[string]string{"csr": good["csr"], "ttl": "soon"}, 400, "malformed", `ttl "soon" is not a duration: write one like 24h, 90m or 30s`},
		{"fail/ttl in days", "/v1/sign/default", s.tok, map[string]string{"csr": good["csr"], "ttl": "7d"}, 400, "malformed", `ttl "7d" is not a duration: write days as hours (168h)`},
		{"fail/negative ttl", "/v1/sign/default", s.tok, map[string]string{"csr": good["csr"], "ttl": "-1h"}, 400, "malformed", `ttl "-1h" is not positive`},
		{"fail/malformed json", "/v1/sign/default", s.tok, "{not json", 400, "malformed", "request body: not JSON: invalid character 'n' looking for beginning of object key string (at byte 2)"},
		{"fail/json cut short", "/v1/sign/default", s.tok, `{"csr":`, 400, "malformed", "request body: the JSON ends before it is complete"},
		{"fail/unknown field", "/v1/sign/default", s.tok, `{"csr":"x","extra":1}`, 400, "malformed", `request body: unknown field "extra"; this request takes "csr", "ttl"`},
		{"fail/not an object", "/v1/sign/default", s.tok, `["x"]`, 400, "malformed", "request body: want a JSON object, not an array"},
		{"fail/number for a string", "/v1/sign/default", s.tok, `{"csr":5}`, 400, "malformed", "request body: csr: want a string, not a number"},
		{"fail/string for a list", "/v1/issue/default", s.tok, `{"dns_names":"a.internal"}`, 400, "malformed", "request body: dns_names: want a list of strings, not a string"},
		{"fail/number in a list", "/v1/issue/default", s.tok, `{"dns_names":["a.internal",7]}`, 400, "malformed", "request body: dns_names: want a string, not a number"},
		{"fail/not pem", "/v1/sign/default", s.tok, map[string]string{"csr": "hello"}, 400, "badCSR", "not PEM"},
		{"fail/bad der", "/v1/sign/default", s.tok, map[string]string{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMAMCAQA=\n-----END CERTIFICATE REQUEST-----\n"}, 400, "badCSR", "PKCS#10"},
		{"fail/bad signature", "/v1/sign/default", s.tok, map[string]string{"csr": strings.Join(blk, "\n")}, 400, "badCSR", ""},
		{"fail/RSA key larger than any role allows", "/v1/sign/default", s.tok, map[string]string{"csr": hugeRSA}, 403, "forbidden", "RSA key of 100000 bits: only 2048, 3072 or 4096 bits are accepted"},
		{"fail/too large", "/v1/sign/default", s.tok, `{"csr":"` + strings.Repeat("A", 70<<10) + `"}`, 413, "tooLarge", "limit of 65536"},
		{"fail/CSR that names nothing", "/v1/sign/default", s.tok, map[string]string{"csr": csrPEM(t, key, "")}, 400, "badCSR", "no common name and no subject alternative names"},
		{"fail/ttl under a second", "/v1/issue/default", s.tok, map[string]any{"common_name": "a.internal", "ttl": "1ms"}, 400, "malformed", "under a second"},
		{"fail/issue no names", "/v1/issue/default", s.tok, map[string]any{"ttl": "1h"}, 400, "malformed", "give common_name or at least one of dns_names"},
		{"fail/issue bad key type", "/v1/issue/default", s.tok, map[string]any{"common_name": "a.internal", "key_type": "rsa-1024"}, 400, "malformed", "key_type"},
		{"fail/issue bad ip", "/v1/issue/default", s.tok, map[string]any{"common_name": "a.internal", "ip_addresses": []string{"300.1.1.1"}}, 400, "malformed", "ip_addresses"},
		{"fail/issue mapped ip", "/v1/issue/default", s.tok, map[string]any{"common_name": "a.internal", "ip_addresses": []string{"::ffff:127.0.0.1"}}, 400, "malformed", "IPv4-mapped"},
		{"fail/issue 101 names", "/v1/issue/default", s.tok, map[string]any{"dns_names": manyNames(101)}, 403, "rejectedIdentifier", "101 SANs requested; a certificate holds at most 100"},
		{"fail/issue outside policy before keygen", "/v1/issue/default", s.tok, map[string]any{"common_name": "evil.com", "key_type": "rsa-4096"}, 403, "rejectedIdentifier", "subdomains of internal"},
		{"fail/revoke non-admin", "/v1/revoke", s.tok, map[string]string{"serial": "ab"}, 403, "forbidden", "not an admin"},
		{"fail/revoke unknown serial", "/v1/revoke", s.admin, map[string]string{"serial": "ab"}, 404, "notFound", "no certificate"},
		{"fail/revoke bad reason", "/v1/revoke", s.admin, map[string]string{"serial": "ab", "reason": "certificateHold"}, 400, "badRevocationReason", "not accepted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p api.Problem
			resp := s.do(t, "POST", c.path, c.token, c.body, &p)
			if resp.StatusCode != c.status || !strings.HasSuffix(p.Type, "/"+c.typ) || !strings.Contains(p.Detail, c.detail) || p.Status != c.status {
				t.Fatalf("got %d %+v; want %d %s %q", resp.StatusCode, p, c.status, c.typ, c.detail)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
		})
	}
}

func TestEnrollmentToken(t *testing.T) {
	s := shared
	once := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Once = true; o.Names = []string{"new.internal"} })
	key := testutil.LeafKey(t, "ec-p384")
	var p api.Problem
	if r := s.do(t, "POST", "/v1/sign/default", once, map[string]string{"csr": csrPEM(t, key, "other.internal")}, &p); r.StatusCode != 403 || !strings.Contains(p.Detail, "exactly new.internal") {
		t.Fatalf("fail/other name: %d %+v", r.StatusCode, p)
	}
	var r api.IssueResponse
	if resp := s.do(t, "POST", "/v1/sign/default", once, map[string]string{"csr": csrPEM(t, key, "new.internal")}, &r); resp.StatusCode != 201 {
		t.Fatalf("ok/first use: %d", resp.StatusCode)
	}
	if resp := s.do(t, "POST", "/v1/sign/default", once, map[string]string{"csr": csrPEM(t, key, "new.internal")}, &p); resp.StatusCode != 401 || !strings.Contains(p.Detail, "already used") {
		t.Fatalf("fail/second use: %d %+v", resp.StatusCode, p)
	}
	// Bound names are compared as the certificate carries them: a DNS
	// name in any case, an IP address in any spelling, and a URI exactly
	// (its path is case sensitive; it was once lower-cased, so a token
	// bound to this SPIFFE ID could never be used).
	for _, tc := range []struct {
		bound []string
		req   map[string]any
	}{
		{[]string{"spiffe://internal/ns/Prod/sa/Web"}, map[string]any{"uris": []string{"spiffe://internal/ns/Prod/sa/Web"}}},
		{[]string{"Mixed.Internal.", "127.0.0.2"}, map[string]any{"dns_names": []string{"mixed.internal"}, "ip_addresses": []string{"127.0.0.2"}}},
	} {
		tok := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Once = true; o.Names = tc.bound })
		if resp := s.do(t, "POST", "/v1/issue/default", tok, tc.req, &p); resp.StatusCode != 201 {
			t.Fatalf("ok/bound to %v: %d %+v", tc.bound, resp.StatusCode, p)
		}
	}
}

// TestEnrollmentTokenRace: a single-use token sent by many requests at
// once signs exactly one certificate; every other request is told it was
// already used (the store's compare-and-set, not the earlier read, decides).
func TestEnrollmentTokenRace(t *testing.T) {
	s := shared
	once := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Once = true; o.Names = []string{"race.internal"} })
	body, _ := json.Marshal(map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "race.internal")})
	const n = 16
	// Open n connections first, so the n requests below arrive together
	// rather than one TLS handshake apart.
	var warm sync.WaitGroup
	for range n {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if resp, err := s.client.Get(s.base + "/healthz"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	warm.Wait()
	codes := make([]int, n)
	details := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/sign/default", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+once)
			resp, err := s.client.Do(req)
			if err != nil {
				details[i] = err.Error()
				return
			}
			defer resp.Body.Close()
			var p api.Problem
			json.NewDecoder(resp.Body).Decode(&p)
			codes[i], details[i] = resp.StatusCode, p.Detail
		}()
	}
	close(start)
	wg.Wait()
	signed := 0
	for i, c := range codes {
		switch {
		case c == http.StatusCreated:
			signed++
		case c == http.StatusUnauthorized && strings.Contains(details[i], "already used"):
		default:
			t.Errorf("request %d: %d %s", i, c, details[i])
		}
	}
	if signed != 1 {
		t.Fatalf("a single-use token signed %d certificates", signed)
	}
}

// TestEnrollmentOutlivesClient: a request with a single-use token whose
// client hangs up as soon as it is sent is signed and recorded all the
// same. Before, the request's context ended with the connection, and the
// token could be spent with nothing signed: the client could not retry,
// and nothing showed what the token had bought.
func TestEnrollmentOutlivesClient(t *testing.T) {
	s := shared
	ctx := context.Background()
	host := strings.TrimPrefix(s.base, "https://")
	for i := range 4 {
		name := fmt.Sprintf("gone%d.internal", i)
		once := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.Name, o.Once, o.Names = name, true, []string{name} })
		body, _ := json.Marshal(map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), name)})
		conn, err := tls.Dial("tcp", host, s.client.Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /v1/sign/default HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, once, len(body), body)
		conn.Close() // gone before any answer
		spent, signed := false, false
		for deadline := time.Now().Add(testutil.DutyWait); !(spent && signed) && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			toks, err := s.run.Store.ListTokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range toks {
				spent = spent || tk.Name == name && !tk.UsedAt.IsZero()
			}
			for cursor := ""; ; {
				recs, next, err := s.run.Store.ListCertificates(ctx, store.ListFilter{Role: "default", Cursor: cursor, Limit: 500})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					signed = signed || slices.Contains(r.Names, name)
				}
				if cursor = next; cursor == "" {
					break
				}
			}
		}
		if !spent || !signed {
			t.Fatalf("attempt %d: token spent %v, certificate recorded %v", i, spent, signed)
		}
	}
}

func TestRevokeThroughAPI(t *testing.T) {
	s := shared
	// A key of its own: keyCompromise blocks it for good.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var r api.IssueResponse
	s.do(t, "POST", "/v1/sign/default", s.tok, map[string]string{"csr": csrPEM(t, key, "rev.internal")}, &r)
	var v api.CertView
	if resp := s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": "00:" + strings.ToUpper(r.Serial), "reason": "superseded"}, &v); resp.StatusCode != 200 || v.Status != "revoked" || v.Reason != "superseded" {
		t.Fatalf("ok/revoke: %d %+v", resp.StatusCode, v)
	}
	var p api.Problem
	if resp := s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": r.Serial, "reason": "superseded"}, &p); resp.StatusCode != 409 {
		t.Fatalf("fail/again: %d", resp.StatusCode)
	}
	if resp := s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": r.Serial, "reason": "keyCompromise"}, &v); resp.StatusCode != 200 || v.Reason != "keyCompromise" {
		t.Fatalf("ok/raise to keyCompromise: %d %+v", resp.StatusCode, v)
	}
	if resp := s.do(t, "POST", "/v1/sign/default", s.tok, map[string]string{"csr": csrPEM(t, key, "rev.internal")}, &p); resp.StatusCode != 403 || !strings.Contains(p.Detail, "keyCompromise") {
		t.Fatalf("fail/blocked key signed again: %d %+v", resp.StatusCode, p)
	}
}

func TestPublicListenerOnlyServesPublicPaths(t *testing.T) {
	s := shared
	for path, want := range map[string]int{"/crl": 200, "/crl.pem": 200, "/v1/ca/intermediate.der": 200, "/v1/ca/root.crl": 200, "/crl/bundle.pem": 200, "/v1/sign/default": 404, "/v1/tokens": 404, "/healthz": 404} {
		resp, err := http.Get(s.http + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestPlainHTTPToTLSPort(t *testing.T) {
	s := shared
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/sign/default HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 2\r\n\r\n{}", s.tok)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, _ := io.ReadAll(conn)
	if strings.Contains(string(raw), "BEGIN CERTIFICATE") || !strings.Contains(string(raw), "400") {
		t.Fatalf("plain HTTP to the TLS port got %q", raw)
	}
}

func TestTLSOnly12Plus(t *testing.T) {
	_, err := tls.Dial("tcp", strings.TrimPrefix(shared.base, "https://"), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

// TestHTTP1Only: a client that offers HTTP/2, as Go's and curl do, is
// answered in HTTP/1.1 (see ServerCert.TLSConfig for why).
func TestHTTP1Only(t *testing.T) {
	tr := &http.Transport{TLSClientConfig: shared.client.Transport.(*http.Transport).TLSClientConfig.Clone(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(shared.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/1.1" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("answered in %s (ALPN %q)", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
}

func TestServerCertificateRenewsItself(t *testing.T) {
	s := shared
	s.advance(t, 0) // a certificate valid on the clock, whatever ran before
	first := s.servedCert(t)
	// Past two thirds of the current certificate's remaining life.
	s.clock.Advance(first.NotAfter.Sub(s.clock.Now()) * 3 / 4)
	deadline := time.Now().Add(testutil.DutyWait)
	for s.servedCert(t).SerialNumber.Cmp(first.SerialNumber) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("server certificate was not renewed after the clock moved")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServerCertificateReplacedWhenRevoked: an admin revokes the server's
// own certificate (its key leaked); within a tick the server serves a new
// one, with a new key, whose record is valid, and no restart.
func TestServerCertificateReplacedWhenRevoked(t *testing.T) {
	s := shared
	s.advance(t, 0)
	first := s.servedCert(t)
	var rec api.CertView
	if resp := s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": ca.SerialString(first.SerialNumber), "reason": "keyCompromise"}, &rec); resp.StatusCode != 200 || rec.Role != ca.ServerRole {
		t.Fatalf("revoke the server certificate: %d, role %q", resp.StatusCode, rec.Role)
	}
	deadline := time.Now().Add(testutil.DutyWait)
	next := s.servedCert(t)
	for ; next.SerialNumber.Cmp(first.SerialNumber) == 0; next = s.servedCert(t) {
		if time.Now().After(deadline) {
			t.Fatal("the revoked server certificate is still served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if bytes.Equal(next.RawSubjectPublicKeyInfo, first.RawSubjectPublicKeyInfo) {
		t.Fatal("the new server certificate reuses the revoked key")
	}
	var v api.CertView
	if resp := s.do(t, "GET", "/v1/certs/"+ca.SerialString(next.SerialNumber), "", nil, &v); resp.StatusCode != 200 || v.Status != "valid" || v.Role != ca.ServerRole {
		t.Fatalf("new server certificate's record: %d %+v", resp.StatusCode, v)
	}
	testutil.LintCertificate(t, next.Raw)
}

func TestConcurrentSignsSurviveRestart(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), nil)
	s := startServer(t, dir, ports)
	csr := csrPEM(t, testutil.LeafKey(t, "ec-p256"), "load.internal")
	const n, workers = 500, 32
	var mu sync.Mutex
	serials := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				var r api.IssueResponse
				if resp := s.do(t, "POST", "/v1/sign/default", s.tok, map[string]string{"csr": csr}, &r); resp.StatusCode != 201 {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
				mu.Lock()
				if serials[r.Serial] {
					t.Errorf("duplicate serial %s", r.Serial)
				}
				serials[r.Serial] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(serials) != n {
		t.Fatalf("%d certificates, want %d", len(serials), n)
	}
	s.stop()
	ports2 := &testutil.Ports{}
	ports2.HTTPS, _ = net.Listen("tcp", ports.HTTPSAddr())
	ports2.HTTP, _ = net.Listen("tcp", ports.HTTPAddr())
	if ports2.HTTPS == nil || ports2.HTTP == nil {
		t.Fatal("ports taken after restart")
	}
	s2 := startServer(t, dir, ports2)
	defer s2.stop()
	for sn := range serials {
		var v api.CertView
		if s2.do(t, "GET", "/v1/certs/"+sn, "", nil, &v).StatusCode != 200 {
			t.Fatalf("record %s lost across restart", sn)
		}
	}
}

func TestHeaderLimit(t *testing.T) {
	req, _ := http.NewRequest("GET", shared.base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 32<<10))
	resp, err := shared.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("32 KiB header: %d, want 431", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	s := shared
	var r api.IssueResponse
	s.do(t, "POST", "/v1/sign/default", s.tok, map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "metrics.internal")}, &r)
	resp, err := s.client.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`pkid_certificates_issued_total{role="default",via="api"}`,
		`pkid_http_requests_total{code="201",route="/v1/sign/{role}"}`,
		`pkid_http_request_duration_seconds_bucket{route="/v1/sign/{role}"`,
		`go_goroutines`,
		`pkid_rate_limited_total{limit="acme.new_accounts"} 0`,
		"\npkid_store_disk_free_bytes ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), r.Serial) || strings.Contains(string(body), "metrics.internal") {
		t.Error("/metrics carries a serial or a name")
	}
	if m := regexp.MustCompile(`\npkid_store_disk_free_bytes (\S+)\n`).FindSubmatch(body); m == nil {
		t.Error("/metrics has no free disk space")
	} else if free, err := strconv.ParseFloat(string(m[1]), 64); err != nil || !(free > 0) {
		t.Errorf("pkid_store_disk_free_bytes %s", m[1])
	}
}

// manyNames returns n distinct names the default role allows.
func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d.internal", i)
	}
	return out
}

// countingBody counts the bytes a request body gave up.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestOversizeBodyRefusedUnread: a body whose Content-Length is over the
// limit is answered 413 without being read, on every surface (REST, ACME,
// OCSP over plain HTTP). A client that offers it with Expect:
// 100-continue, as curl does, gets the 413 instead of "100 Continue"
// followed by a connection reset under its upload, which curl reported as
// a broken pipe and never showed the 413.
func TestOversizeBodyRefusedUnread(t *testing.T) {
	s := shared
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 10 * time.Second
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for _, c := range []struct{ name, url, contentType, typ string }{
		{"REST", s.base + "/v1/sign/default", "application/json", "https://pkid.dev/problems/tooLarge"},
		{"ACME", s.base + "/acme/default/new-account", "application/jose+json", "urn:ietf:params:acme:error:malformed"},
		{"OCSP", s.http + "/ocsp", "application/ocsp-request", ""},
	} {
		t.Run("fail/"+c.name, func(t *testing.T) {
			body := &countingBody{r: bytes.NewReader(make([]byte, 4<<20))}
			req, err := http.NewRequest("POST", c.url, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 4 << 20
			req.Header.Set("Expect", "100-continue")
			req.Header.Set("Content-Type", c.contentType)
			req.Header.Set("Authorization", "Bearer "+s.tok)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			var p api.Problem
			json.NewDecoder(resp.Body).Decode(&p)
			if resp.StatusCode != 413 || !strings.Contains(p.Detail, "larger than the limit of 65536 bytes") || (c.typ != "" && p.Type != c.typ) {
				t.Fatalf("got %d %+v, want 413 %s", resp.StatusCode, p, c.typ)
			}
			if n := body.n.Load(); n != 0 {
				t.Fatalf("the server asked for the body (100 Continue) and %d bytes of it were sent", n)
			}
		})
	}
}
