package acme_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/acme"
	"pkid/api"
	"pkid/ca"
	"pkid/internal/testutil"
	"pkid/policies"
	"pkid/store"
)

func TestDirectory(t *testing.T) {
	t.Run("ok/lists resources", func(t *testing.T) {
		c := newRaw(t, "default")
		for _, k := range []string{"newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"} {
			if u, _ := c.dir[k].(string); !strings.HasPrefix(u, srv.base+"/acme/default/") {
				t.Errorf("%s = %v", k, c.dir[k])
			}
		}
		// The role is the directory's one profile (draft-ietf-acme-profiles).
		profiles, _ := c.dir["meta"].(map[string]any)["profiles"].(map[string]any)
		if d, _ := profiles["default"].(string); len(profiles) != 1 || !strings.Contains(d, "valid 24h0m0s, for server_auth and client_auth") {
			t.Errorf("meta.profiles = %v", profiles)
		}
	})
	t.Run("fail/role without acme", func(t *testing.T) {
		resp, err := srv.client.Get(srv.dirURL("noacme"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
	t.Run("fail/unknown role", func(t *testing.T) {
		resp, _ := srv.client.Get(srv.dirURL("nope"))
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatal(resp.StatusCode)
		}
	})
}

// TestDirectoryMethods: HEAD is answered like GET; another method is a 405
// problem saying which method the directory takes (not a 404).
func TestDirectoryMethods(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   int
	}{{http.MethodHead, 200}, {http.MethodPost, 405}, {http.MethodPut, 405}} {
		req, _ := http.NewRequest(tc.method, srv.dirURL("default"), nil)
		resp, err := srv.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || tc.want == 405 && !strings.Contains(string(body), "read with GET") {
			t.Fatalf("%s: %d %s", tc.method, resp.StatusCode, body)
		}
	}
}

func TestNewNonce(t *testing.T) {
	c := newRaw(t, "default")
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		req, _ := http.NewRequest(m, c.url("newNonce"), nil)
		resp, err := srv.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := map[string]int{"HEAD": 200, "GET": 204}[m]
		if resp.StatusCode != want || resp.Header.Get("Replay-Nonce") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("ok/%s: %d %v", m, resp.StatusCode, resp.Header)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, c.url("newNonce"), nil)
	resp, _ := srv.client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("fail/PUT: %d", resp.StatusCode)
	}
}

func TestNewAccount(t *testing.T) {
	t.Run("ok/create then find", func(t *testing.T) {
		c := newRaw(t, "default")
		c.register()
		kid := c.kid
		c.kid = "" // newAccount is signed with the jwk
		a := c.post(c.url("newAccount"), map[string]any{"onlyReturnExisting": true})
		if a.status != 200 || a.header.Get("Location") != kid {
			t.Fatalf("%d %s", a.status, a.header.Get("Location"))
		}
		a = c.post(c.url("newAccount"), map[string]any{"termsOfServiceAgreed": true})
		if a.status != 200 || a.header.Get("Location") != kid {
			t.Fatalf("existing account: %d", a.status)
		}
	})
	t.Run("fail/onlyReturnExisting without account", func(t *testing.T) {
		c := newRaw(t, "default")
		if typ, _ := c.post(c.url("newAccount"), map[string]any{"onlyReturnExisting": true}).problem(t); typ != "accountDoesNotExist" {
			t.Fatal(typ)
		}
	})
	// Account keys: P-256, P-384, RSA ≥ 2048 and Ed25519 are accepted;
	// anything weaker is refused by name before any account exists.
	for name, tc := range map[string]struct {
		key      func() crypto.Signer
		typ, msg string
	}{
		"ok/P-384":      {func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader); return k }, "", ""},
		"ok/RSA-2048":   {func() crypto.Signer { return testutil.LeafKey(t, "rsa-2048") }, "", ""},
		"fail/RSA-1024": {func() crypto.Signer { k, _ := rsa.GenerateKey(rand.Reader, 1024); return k }, "badPublicKey", "too small"},
		"fail/P-521":    {func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader); return k }, "badSignatureAlgorithm", "ES512"},
	} {
		t.Run(name, func(t *testing.T) {
			c := newRaw(t, "default")
			c.key = tc.key()
			a := c.post(c.url("newAccount"), map[string]any{"termsOfServiceAgreed": true})
			if tc.typ == "" {
				// 200 when the (fixture) key already has its account, as
				// on a second -count.
				if (a.status != 201 && a.status != 200) || a.header.Get("Location") == "" {
					t.Fatalf("%d %s", a.status, a.body)
				}
				return
			}
			if typ, detail := a.problem(t); typ != tc.typ || !strings.Contains(detail, tc.msg) {
				t.Fatalf("%s: %s", typ, detail)
			}
		})
	}
	// An RSA key larger than 4096 bits is refused before its signature is
	// checked (the check costs the square of the modulus, and newAccount
	// needs no account): go-jose's MaxRSAModulusBits does it when it parses
	// the JWK. The signature here is garbage; the answer names the key.
	t.Run("fail/RSA-8192 before its signature", func(t *testing.T) {
		c := newRaw(t, "default")
		n := new(big.Int).Lsh(big.NewInt(1), 8191)
		jwk, _ := (&jose.JSONWebKey{Key: &rsa.PublicKey{N: n.Add(n, big.NewInt(1)), E: 65537}}).MarshalJSON()
		enc := base64.RawURLEncoding
		hdr, _ := json.Marshal(map[string]any{"alg": "RS256", "jwk": json.RawMessage(jwk), "nonce": c.nonce(), "url": c.url("newAccount")})
		body, _ := json.Marshal(map[string]string{"protected": enc.EncodeToString(hdr), "payload": enc.EncodeToString([]byte(`{"termsOfServiceAgreed":true}`)), "signature": enc.EncodeToString(make([]byte, 1024))})
		if typ, detail := c.postRaw(c.url("newAccount"), body).problem(t); typ != "malformed" || !strings.Contains(detail, "RSA modulus size") {
			t.Fatalf("%s: %s", typ, detail)
		}
	})
	t.Run("fail/bad contact", func(t *testing.T) {
		c := newRaw(t, "default")
		if typ, _ := c.post(c.url("newAccount"), map[string]any{"contact": []string{"tel:+1555"}}).problem(t); typ != "unsupportedContact" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/kid on newAccount", func(t *testing.T) {
		c := newRaw(t, "default")
		c.register()
		if typ, _ := c.post(c.url("newAccount"), map[string]any{}).problem(t); typ != "malformed" {
			t.Fatal(typ)
		}
	})
}

func TestAccount(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	t.Run("ok/post-as-get", func(t *testing.T) {
		var v struct{ Status, Orders string }
		a := c.post(c.kid, nil)
		a.json(t, &v)
		if a.status != 200 || v.Status != "valid" || !strings.HasSuffix(v.Orders, "/orders") {
			t.Fatalf("%d %+v", a.status, v)
		}
	})
	t.Run("ok/update contact", func(t *testing.T) {
		var v struct{ Contact []string }
		c.post(c.kid, map[string]any{"contact": []string{"mailto:new@example.com"}}).json(t, &v)
		if len(v.Contact) != 1 || v.Contact[0] != "mailto:new@example.com" {
			t.Fatal(v)
		}
	})
	for _, tc := range []struct{ contact, typ string }{
		{"tel:+15551234", "unsupportedContact"},
		{"mailto:a@example.com,b@example.com", "invalidContact"},
		{"mailto:Ops <ops@example.com>", "invalidContact"},
		{"mailto:ops@example.com?subject=x", "invalidContact"},
		{"mailto:not an address", "invalidContact"},
	} {
		t.Run("fail/contact "+tc.contact, func(t *testing.T) {
			if typ, d := c.post(c.kid, map[string]any{"contact": []string{tc.contact}}).problem(t); typ != tc.typ || !strings.Contains(d, tc.contact) {
				t.Fatalf("%s %q, want %s naming the contact", typ, d, tc.typ)
			}
			// newAccount checks them the same way.
			n := newRaw(t, "default")
			if typ, _ := n.post(n.url("newAccount"), map[string]any{"termsOfServiceAgreed": true, "contact": []string{tc.contact}}).problem(t); typ != tc.typ {
				t.Fatalf("newAccount: %s, want %s", typ, tc.typ)
			}
		})
	}
	t.Run("fail/other account", func(t *testing.T) {
		other := newRaw(t, "default")
		other.register()
		if typ, _ := other.post(c.kid, nil).problem(t); typ != "unauthorized" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/status other than deactivated", func(t *testing.T) {
		if typ, _ := c.post(c.kid, map[string]any{"status": "valid"}).problem(t); typ != "malformed" {
			t.Fatal(typ)
		}
	})
	t.Run("ok/deactivate, then refused", func(t *testing.T) {
		d := newRaw(t, "default")
		d.register()
		var v struct{ Status string }
		d.post(d.kid, map[string]any{"status": "deactivated"}).json(t, &v)
		if v.Status != "deactivated" {
			t.Fatal(v)
		}
		if typ, _ := d.post(d.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "a.internal"}}}).problem(t); typ != "unauthorized" {
			t.Fatalf("deactivated account placed an order: %s", typ)
		}
		// Journaled beside the store: a restored store does not bring
		// the account back.
		id := d.kid[strings.LastIndex(d.kid, "/")+1:]
		journal, err := os.ReadFile(api.WithdrawnPath(api.StoreDir(srv.run.Config)))
		if err != nil || !strings.Contains(string(journal), `{"kind":"acme-account","id":"`+id+`","status":"deactivated"`) {
			t.Fatalf("deactivation not journaled: %v\n%s", err, journal)
		}
	})
}

// TestOrdersList: an account's orders list (RFC 8555 §7.1.2.1) holds its
// orders oldest first, in pages of at most 100 linked by Link rel="next",
// and leaves out invalid ones (here one whose authorization the client
// deactivated), as the RFC says it should not include them; only the
// account itself may read it, with POST-as-GET.
func TestOrdersList(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	u1, _ := c.newOrder("a.internal")
	_, gone := c.newOrder("gone.internal")
	if a := c.post(gone.Authorizations[0], map[string]any{"status": "deactivated"}); a.status != 200 {
		t.Fatalf("deactivate: %d %s", a.status, a.body)
	}
	u2, _ := c.newOrder("b.internal")
	var v struct{ Orders []string }
	a := c.post(c.kid+"/orders", nil)
	a.json(t, &v)
	if a.status != 200 || len(v.Orders) != 2 || v.Orders[0] != u1 || v.Orders[1] != u2 {
		t.Fatalf("ok/list without the invalid order: %d %v", a.status, v.Orders)
	}
	if typ, _ := c.post(c.kid+"/orders", map[string]any{}).problem(t); typ != "malformed" {
		t.Fatalf("fail/not POST-as-GET: %s", typ)
	}
	other := newRaw(t, "default")
	other.register()
	if typ, _ := other.post(c.kid+"/orders", nil).problem(t); typ != "unauthorized" {
		t.Fatalf("fail/other account: %s", typ)
	}
	// 151 orders, one invalid: a page of 99 with a Link to the next, then
	// the last 51 with none.
	want := []string{u1, u2}
	for i := range 148 {
		u, _ := c.newOrder(fmt.Sprintf("p%d.internal", i))
		want = append(want, u)
	}
	var got []string
	next, pages := c.kid+"/orders", 0
	for next != "" {
		a := c.post(next, nil)
		a.json(t, &v)
		if a.status != 200 {
			t.Fatalf("ok/page %d: %d %s", pages, a.status, a.body)
		}
		got, pages, next = append(got, v.Orders...), pages+1, ""
		for _, l := range a.header.Values("Link") {
			if u, ok := strings.CutSuffix(l, `>;rel="next"`); ok {
				next = strings.TrimPrefix(u, "<")
			}
		}
	}
	if pages != 2 || !slices.Equal(got, want) {
		t.Fatalf("ok/pages: %d pages, %d orders, want 2 pages of %d in order", pages, len(got), len(want))
	}
	if typ, d := c.post(c.kid+"/orders?cursor=zz", nil).problem(t); typ != "malformed" || !strings.Contains(d, "cursor") {
		t.Fatalf("fail/cursor not given: %s %s", typ, d)
	}
	// The signed url must be the request's, query included.
	body := sign(t, c.key, c.kid, c.nonce(), c.kid+"/orders", nil)
	if typ, d := c.postRaw(c.kid+"/orders?cursor=0000000000000001", body).problem(t); typ != "unauthorized" || !strings.Contains(d, "does not match") {
		t.Fatalf("fail/url signed without the query: %s %s", typ, d)
	}
}

func TestNewOrder(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	t.Run("ok/pending with authorizations", func(t *testing.T) {
		loc, o := c.newOrder("a.internal", "127.0.0.1")
		if o.Status != "pending" || len(o.Authorizations) != 2 || loc == "" {
			t.Fatalf("%+v", o)
		}
		var az authzObj
		a := c.post(o.Authorizations[1], nil)
		a.json(t, &az)
		if az.Identifier.Type != "ip" || a.header.Get("Retry-After") != "1" {
			t.Fatalf("ip authz %+v", az)
		}
		for _, ch := range az.Challenges {
			if ch.Token == "" || ch.Type == "dns-01" {
				t.Fatalf("challenge %+v offered for an IP", ch)
			}
		}
	})
	t.Run("fail/a profile the directory does not offer", func(t *testing.T) {
		a := c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "a.internal"}}, "profile": "shortlived"})
		if typ, d := a.problem(t); a.status != 400 || typ != "invalidProfile" || !strings.Contains(d, `offers profile "default" only`) {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("ok/the directory's own profile, echoed", func(t *testing.T) {
		a := c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "a.internal"}}, "profile": "default"})
		var o struct{ Status, Profile string }
		a.json(t, &o)
		if a.status != 201 || o.Profile != "default" {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if c.post(a.header.Get("Location"), nil).json(t, &o); o.Profile != "default" {
			t.Fatalf("order read back: %+v", o)
		}
	})
	t.Run("fail/outside the role", func(t *testing.T) {
		a := c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "example.com"}, {"type": "dns", "value": "ok.internal"}}})
		typ, detail := a.problem(t)
		if typ != "rejectedIdentifier" || !strings.Contains(detail, "example.com") || !strings.Contains(detail, "subdomains of internal") {
			t.Fatalf("%s %s", typ, detail)
		}
		var p struct {
			Subproblems []struct{ Identifier struct{ Value string } }
		}
		a.json(t, &p)
		if len(p.Subproblems) != 1 || p.Subproblems[0].Identifier.Value != "example.com" {
			t.Fatalf("subproblems %+v", p)
		}
	})
	t.Run("fail/ip outside range", func(t *testing.T) {
		if typ, _ := c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "ip", "value": "10.0.0.1"}}}).problem(t); typ != "rejectedIdentifier" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/unknown identifier type", func(t *testing.T) {
		if typ, _ := c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "email", "value": "a@internal"}}}).problem(t); typ != "unsupportedIdentifier" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/no identifiers", func(t *testing.T) {
		if typ, _ := c.post(c.url("newOrder"), map[string]any{"identifiers": []string{}}).problem(t); typ != "malformed" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/empty dns identifier", func(t *testing.T) {
		if typ, d := c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": ""}}}).problem(t); typ != "malformed" || !strings.Contains(d, "empty dns identifier") {
			t.Fatal(typ, d)
		}
	})
	t.Run("fail/payload not an object", func(t *testing.T) {
		if typ, d := c.post(c.url("newOrder"), []string{"a.internal"}).problem(t); typ != "malformed" || !strings.Contains(d, "not a JSON object") {
			t.Fatal(typ, d)
		}
	})
	t.Run("ok/a repeated identifier is ordered once", func(t *testing.T) {
		var o orderObj
		a := c.post(c.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "twice.internal"}, {"type": "dns", "value": "TWICE.internal"}}})
		a.json(t, &o)
		if a.status != 201 || len(o.Identifiers) != 1 || len(o.Authorizations) != 1 {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("fail/101 identifiers", func(t *testing.T) {
		ids := make([]map[string]string, policies.MaxNames+1)
		for i := range ids {
			ids[i] = map[string]string{"type": "dns", "value": fmt.Sprintf("h%d.internal", i)}
		}
		if typ, detail := c.post(c.url("newOrder"), map[string]any{"identifiers": ids}).problem(t); typ != "malformed" || !strings.Contains(detail, "1 to 100 identifiers, not 101") {
			t.Fatal(typ, detail)
		}
	})
	t.Run("fail/order of another account", func(t *testing.T) {
		loc, _ := c.newOrder("c.internal")
		other := newRaw(t, "default")
		other.register()
		if a := other.post(loc, nil); a.status != 404 {
			t.Fatal(a.status)
		}
	})
}

func csrFor(t *testing.T, key crypto.Signer, names ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(der)
}

// TestOrderFlow drives one order by hand: challenge, validation, finalize
// refusals, finalize, download, revocation.
func TestOrderFlow(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := c.serveKeyAuth()
	defer stop()
	loc, o := c.newOrder("a.internal", "b.internal")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if typ, _ := c.post(o.Finalize, map[string]any{"csr": csrFor(t, key, "a.internal", "b.internal")}).problem(t); typ != "orderNotReady" {
		t.Fatalf("fail/finalize before ready: %s", typ)
	}
	for _, u := range o.Authorizations {
		var az authzObj
		c.post(u, nil).json(t, &az)
		var chURL string
		for _, ch := range az.Challenges {
			if ch.Type == "http-01" {
				chURL = ch.URL
			}
		}
		// A validation that takes milliseconds is decided before the POST
		// is answered: the challenge comes back valid, with no Retry-After.
		a := c.post(chURL, map[string]any{})
		var ch struct{ Status, Validated string }
		a.json(t, &ch)
		if a.status != 200 || ch.Status != "valid" || ch.Validated == "" || a.header.Get("Retry-After") != "" || !strings.Contains(strings.Join(a.header.Values("Link"), ","), `rel="up"`) {
			t.Fatalf("ok/challenge POST: %d %s %v", a.status, a.body, a.header)
		}
		if got := c.waitAuthz(u); got.Status != "valid" {
			t.Fatalf("authz %+v", got)
		}
	}
	var cur orderObj
	c.post(loc, nil).json(t, &cur)
	if cur.Status != "ready" {
		t.Fatalf("order %s, want ready", cur.Status)
	}
	if typ, d := c.post(o.Finalize, map[string]any{"csr": csrFor(t, key, "a.internal", "b.internal", "c.internal")}).problem(t); typ != "badCSR" || !strings.Contains(d, "differ") {
		t.Fatalf("fail/extra name: %s %s", typ, d)
	}
	if typ, _ := c.post(o.Finalize, map[string]any{"csr": csrFor(t, key, "a.internal")}).problem(t); typ != "badCSR" {
		t.Fatalf("fail/missing name: %s", typ)
	}
	if typ, _ := c.post(o.Finalize, map[string]any{"csr": "!!!"}).problem(t); typ != "badCSR" {
		t.Fatalf("fail/garbage csr: %s", typ)
	}
	// The order's names and a UPN otherName, which x509 would skip: the
	// certificate would lack a name the CSR asks for.
	upn, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	utf8, _ := asn1.MarshalWithParams("a@internal", "utf8")
	val, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8})
	sanDER, _ := asn1.Marshal([]asn1.RawValue{
		{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("a.internal")}, {Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("b.internal")},
		{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(upn, val...)},
	})
	otherDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: sanDER}}}, key)
	if typ, d := c.post(o.Finalize, map[string]any{"csr": base64.RawURLEncoding.EncodeToString(otherDER)}).problem(t); typ != "badCSR" || !strings.Contains(d, "otherName 1.3.6.1.4.1.311.20.2.3, which pkid does not issue") {
		t.Fatalf("fail/otherName SAN: %s %s", typ, d)
	}
	// A key the role refuses is the CSR's fault too (RFC 8555 §7.4: badCSR,
	// "e.g., due to a short key"), and the order stays ready for a CSR
	// with another key.
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	if a := c.post(o.Finalize, map[string]any{"csr": csrFor(t, weak, "a.internal", "b.internal")}); a.status != 400 {
		t.Fatalf("fail/weak key: %d %s", a.status, a.body)
	} else if typ, d := a.problem(t); typ != "badCSR" || !strings.Contains(d, "RSA key of 1024 bits is too weak") {
		t.Fatalf("fail/weak key: %s %s", typ, d)
	}
	c.post(loc, nil).json(t, &cur)
	if cur.Status != "ready" {
		t.Fatalf("order %s after a refused key, want ready", cur.Status)
	}
	a := c.post(o.Finalize, map[string]any{"csr": csrFor(t, key, "b.internal", "a.internal")})
	a.json(t, &cur)
	if a.status != 200 || cur.Status != "valid" || cur.Certificate == "" {
		t.Fatalf("ok/finalize: %d %s", a.status, a.body)
	}
	if typ, _ := c.post(o.Finalize, map[string]any{"csr": csrFor(t, key, "a.internal", "b.internal")}).problem(t); typ != "orderNotReady" {
		t.Fatalf("fail/finalize twice: %s", typ)
	}
	stored, err := srv.run.Store.(store.ACMEStore).GetOrder(context.Background(), loc[strings.LastIndex(loc, "/")+1:])
	if err != nil || stored.PendingSerial == "" || stored.PendingSerial != stored.CertSerial || !strings.HasSuffix(cur.Certificate, "/"+stored.CertSerial) {
		t.Fatalf("ok/finalize signs under the serial it reserved: %+v %v", stored, err)
	}
	dl := c.post(cur.Certificate, nil)
	if dl.status != 200 || dl.header.Get("Content-Type") != "application/pem-certificate-chain" || strings.Count(string(dl.body), "BEGIN CERTIFICATE") != 2 {
		t.Fatalf("ok/download: %d %s", dl.status, dl.header.Get("Content-Type"))
	}
	blk, _ := pem.Decode(dl.body)
	leaf, _ := x509.ParseCertificate(blk.Bytes)
	testutil.LintCertificate(t, leaf.Raw)
	if leaf.NotAfter.Sub(leaf.NotBefore).Hours() != 24+1.0/60 {
		t.Fatalf("validity %s, want the role's 24h", leaf.NotAfter.Sub(leaf.NotBefore))
	}
	other := newRaw(t, "default")
	other.register()
	if a := other.post(cur.Certificate, nil); a.status != 404 {
		t.Fatalf("fail/download by another account: %d", a.status)
	}
	// revokeCert: by another account refused, by the owner ok, twice alreadyRevoked.
	rv := map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(leaf.Raw), "reason": 4}
	if typ, _ := other.post(other.url("revokeCert"), rv).problem(t); typ != "unauthorized" {
		t.Fatalf("fail/revoke by another account: %s", typ)
	}
	if typ, _ := c.post(c.url("revokeCert"), map[string]any{"certificate": rv["certificate"], "reason": 6}).problem(t); typ != "badRevocationReason" {
		t.Fatalf("fail/certificateHold: %s", typ)
	}
	if a := c.post(c.url("revokeCert"), rv); a.status != 200 {
		t.Fatalf("ok/revoke: %d %s", a.status, a.body)
	}
	if typ, _ := c.post(c.url("revokeCert"), rv).problem(t); typ != "alreadyRevoked" {
		t.Fatalf("fail/revoke twice: %s", typ)
	}
}

func TestRevokeWithCertificateKey(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := c.serveKeyAuth()
	defer stop()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// Two certificates for one key, so one can be revoked after the key is
	// blocked.
	revokeCert := func() []byte {
		_, o := c.newOrder("c.internal")
		var az authzObj
		c.post(o.Authorizations[0], nil).json(t, &az)
		c.post(az.Challenges[0].URL, map[string]any{})
		c.waitAuthz(o.Authorizations[0])
		var cur orderObj
		c.post(o.Finalize, map[string]any{"csr": csrFor(t, key, "c.internal")}).json(t, &cur)
		blk, _ := pem.Decode(c.post(cur.Certificate, nil).body)
		payload, _ := json.Marshal(map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(blk.Bytes), "reason": 1})
		return payload
	}
	first, second := revokeCert(), revokeCert()
	// withReason is payload p with another reason (nil: none).
	withReason := func(p []byte, reason any) []byte {
		var m map[string]any
		json.Unmarshal(p, &m)
		delete(m, "reason")
		if reason != nil {
			m["reason"] = reason
		}
		out, _ := json.Marshal(m)
		return out
	}
	// An account that uses the certificates' key as its own, registered
	// before the key is blocked.
	leaked := newRaw(t, "default")
	leaked.key = key
	leaked.register()
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if typ, _ := c.postRaw(c.url("revokeCert"), sign(t, stranger, "", c.nonce(), c.url("revokeCert"), first)).problem(t); typ != "unauthorized" {
		t.Fatalf("fail/another key: %s", typ)
	}
	// A forgery: the real certificate's serial and names in a certificate
	// the stranger made for their own key, signed with that key. The serial
	// finds the record, but the record's DER is not this: refused, and the
	// real certificate is untouched (the owner's revocation below works).
	var fp struct{ Certificate string }
	json.Unmarshal(first, &fp)
	realDER, _ := base64.RawURLEncoding.DecodeString(fp.Certificate)
	real, err := x509.ParseCertificate(realDER)
	if err != nil {
		t.Fatal(err)
	}
	forgedDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: real.SerialNumber, Subject: real.Subject, Issuer: real.Issuer, DNSNames: real.DNSNames, NotBefore: real.NotBefore, NotAfter: real.NotAfter}, &x509.Certificate{Subject: real.Issuer}, stranger.Public(), stranger)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := json.Marshal(map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(forgedDER), "reason": 1})
	if a := c.postRaw(c.url("revokeCert"), sign(t, stranger, "", c.nonce(), c.url("revokeCert"), forged)); a.status != 404 {
		t.Fatalf("fail/forged certificate with a real serial: %d %s", a.status, a.body)
	} else if typ, d := a.problem(t); typ != "malformed" || !strings.Contains(d, "not issued by this CA") {
		t.Fatalf("fail/forged certificate with a real serial: %s %s", typ, d)
	}
	if typ, d := c.postRaw(c.url("revokeCert"), sign(t, key, "", c.nonce(), c.url("revokeCert"), []byte(`{"certificate":"!!"}`))).problem(t); typ != "malformed" || !strings.Contains(d, "not base64url") {
		t.Fatalf("fail/certificate not base64url: %s %s", typ, d)
	}
	// The key proves only that it is out: keyCompromise, or no reason.
	if a := c.postRaw(c.url("revokeCert"), sign(t, key, "", c.nonce(), c.url("revokeCert"), withReason(first, 4))); a.status != 400 {
		t.Fatalf("fail/certificate key gives superseded: %d %s", a.status, a.body)
	} else if typ, d := a.problem(t); typ != "badRevocationReason" || !strings.Contains(d, "is for keyCompromise (or unspecified, recorded as that), not superseded") {
		t.Fatalf("fail/certificate key gives superseded: %s %s", typ, d)
	}
	if a := c.postRaw(c.url("revokeCert"), sign(t, key, "", c.nonce(), c.url("revokeCert"), withReason(first, nil))); a.status != 200 {
		t.Fatalf("ok/revoke by certificate key, no reason: %d %s", a.status, a.body)
	}
	var fc struct{ Certificate string }
	json.Unmarshal(first, &fc)
	firstDER, _ := base64.RawURLEncoding.DecodeString(fc.Certificate)
	firstCert, _ := x509.ParseCertificate(firstDER)
	if rec, err := srv.run.Store.GetCertificate(context.Background(), firstCert.SerialNumber.Text(16)); err != nil || rec.Reason != "keyCompromise" {
		t.Fatalf("ok/no reason from the certificate's key is recorded as keyCompromise: %+v %v", rec, err)
	}
	// keyCompromise blocked the key: it is no account's key now, but it can
	// still revoke its other certificates. The account that had it answers
	// to it no more (or its valid authorization would let whoever holds the
	// key order c.internal again), nor does newAccount find it.
	if typ, detail := leaked.post(leaked.url("newOrder"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "c.internal"}}}).problem(t); typ != "unauthorized" || !strings.Contains(detail, "keyCompromise") {
		t.Fatalf("fail/an account whose key is blocked orders: %s %s", typ, detail)
	}
	if typ, _ := leaked.post(leaked.kid, nil).problem(t); typ != "unauthorized" {
		t.Fatalf("fail/an account whose key is blocked reads itself: %s", typ)
	}
	leaked.kid = "" // newAccount is signed with the jwk
	for _, existing := range []bool{false, true} {
		if typ, detail := leaked.post(leaked.url("newAccount"), map[string]any{"termsOfServiceAgreed": true, "onlyReturnExisting": existing}).problem(t); typ != "badPublicKey" || !strings.Contains(detail, "keyCompromise") {
			t.Fatalf("fail/newAccount with a blocked key (onlyReturnExisting %v): %s %s", existing, typ, detail)
		}
	}
	// The other account, whose key is not blocked, still orders.
	c.newOrder("c.internal")
	old, _ := (&jose.JSONWebKey{Key: c.key.Public()}).MarshalJSON()
	inner, _ := json.Marshal(map[string]any{"account": c.kid, "oldKey": json.RawMessage(old)})
	if typ, _ := c.postRaw(c.url("keyChange"), sign(t, c.key, c.kid, c.nonce(), c.url("keyChange"), sign(t, key, "", "", c.url("keyChange"), inner))).problem(t); typ != "badPublicKey" {
		t.Fatalf("fail/key change to a blocked key: %s", typ)
	}
	// The key's other certificate went with the first: whoever holds the
	// key must not use it either. Revoking it again says so.
	var sc struct{ Certificate string }
	json.Unmarshal(second, &sc)
	secondDER, _ := base64.RawURLEncoding.DecodeString(sc.Certificate)
	secondCert, _ := x509.ParseCertificate(secondDER)
	if rec, err := srv.run.Store.GetCertificate(context.Background(), secondCert.SerialNumber.Text(16)); err != nil || rec.Status != store.StatusRevoked || rec.Reason != "keyCompromise" {
		t.Fatalf("ok/the key's other certificate revoked with the first: %+v %v", rec, err)
	}
	if typ, d := c.postRaw(c.url("revokeCert"), sign(t, key, "", c.nonce(), c.url("revokeCert"), second)).problem(t); typ != "alreadyRevoked" || !strings.Contains(d, "keyCompromise") {
		t.Fatalf("fail/the key's other certificate revoked again: %s %s", typ, d)
	}
}

// TestRevokeByAuthorizedAccount: RFC 8555 §7.6 counts as authorized an
// account that holds valid authorizations for every identifier in the
// certificate, though it did not order it (the subscriber lost its
// account, say). Such an account revokes for cessationOfOperation only;
// pkid's own certificates are refused it whatever it holds.
func TestRevokeByAuthorizedAccount(t *testing.T) {
	// validate has c prove control of names through http-01, one order,
	// and returns the order.
	validate := func(c *rawClient, names ...string) orderObj {
		t.Helper()
		stop := c.serveKeyAuth()
		defer stop()
		_, o := c.newOrder(names...)
		for _, az := range o.Authorizations {
			var obj authzObj
			c.post(az, nil).json(t, &obj)
			if obj.Status == "valid" {
				continue
			}
			c.post(obj.Challenges[0].URL, map[string]any{})
			if got := c.waitAuthz(az); got.Status != "valid" {
				t.Fatalf("authorization for %v: %s", obj.Identifier, got.Status)
			}
		}
		return o
	}
	owner := newRaw(t, "default")
	owner.register()
	o := validate(owner, "a.internal", "b.internal")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var cur orderObj
	owner.post(o.Finalize, map[string]any{"csr": csrFor(t, key, "a.internal", "b.internal")}).json(t, &cur)
	blk, _ := pem.Decode(owner.post(cur.Certificate, nil).body)
	if blk == nil {
		t.Fatalf("no certificate: %+v", cur)
	}
	leaf, _ := x509.ParseCertificate(blk.Bytes)
	revoke := func(c *rawClient, der []byte, reason *int) answer {
		body := map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(der)}
		if reason != nil {
			body["reason"] = *reason
		}
		return c.post(c.url("revokeCert"), body)
	}
	code := func(n int) *int { return &n }

	other := newRaw(t, "default")
	other.register()
	validate(other, "a.internal")
	if a := revoke(other, leaf.Raw, nil); a.status != 403 {
		t.Fatalf("fail/authorized for one name of two: %d %s", a.status, a.body)
	} else if typ, d := a.problem(t); typ != "unauthorized" || !strings.Contains(d, "no valid authorization for dns b.internal") {
		t.Fatalf("fail/authorized for one name of two: %s %s", typ, d)
	}
	validate(other, "b.internal")
	for _, n := range []int{1, 4} { // keyCompromise, superseded: the subscriber's to say
		if typ, d := revoke(other, leaf.Raw, code(n)).problem(t); typ != "badRevocationReason" || !strings.Contains(d, "cessationOfOperation") {
			t.Fatalf("fail/reason %d from an authorized account: %s %s", n, typ, d)
		}
	}
	serverCert := srv.run.ServerCert.Current()
	if typ, d := revoke(other, serverCert.Raw, nil).problem(t); typ != "unauthorized" || !strings.Contains(d, "pkid's own") {
		t.Fatalf("fail/pkid's own certificate: %s %s", typ, d)
	}
	if a := revoke(other, leaf.Raw, code(0)); a.status != 200 {
		t.Fatalf("ok/authorized for every name: %d %s", a.status, a.body)
	}
	rec, err := srv.run.Store.GetCertificate(context.Background(), ca.SerialString(leaf.SerialNumber))
	if err != nil || rec.Status != store.StatusRevoked || rec.Reason != "cessationOfOperation" {
		t.Fatalf("record after the revocation: %+v %v", rec, err)
	}
}

func TestWrongChallengeResponse(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := serveHTTP01(t, func(tok string) string { return tok + ".not-the-thumbprint" })
	defer stop()
	loc, o := c.newOrder("wrong.internal")
	var az authzObj
	c.post(o.Authorizations[0], nil).json(t, &az)
	// A quick failure is in the POST's answer already, problem included.
	var ch struct {
		Status string
		Error  *struct{ Type string }
	}
	c.post(az.Challenges[0].URL, map[string]any{}).json(t, &ch)
	if ch.Status != "invalid" || ch.Error == nil || !strings.HasSuffix(ch.Error.Type, "incorrectResponse") {
		t.Fatalf("fail/challenge POST: %+v", ch)
	}
	got := c.waitAuthz(o.Authorizations[0])
	if got.Status != "invalid" || got.Challenges[0].Status != "invalid" || got.Challenges[0].Error == nil || !strings.HasSuffix(got.Challenges[0].Error.Type, "incorrectResponse") {
		t.Fatalf("authz %+v", got)
	}
	// The detail describes the wrong answer without quoting it: a redirect
	// or a DNS record could have pointed the CA at a page its requester
	// cannot read.
	if d := got.Challenges[0].Error.Detail; strings.Contains(d, "not-the-thumbprint") || !strings.Contains(d, fmt.Sprintf("answered %d bytes (text/plain", len(az.Challenges[0].Token+".not-the-thumbprint"))) || !strings.Contains(d, c.thumbprint()) {
		t.Fatalf("detail %q", d)
	}
	var cur orderObj
	c.post(loc, nil).json(t, &cur)
	if cur.Status != "invalid" {
		t.Fatalf("order %s, want invalid", cur.Status)
	}
}

// TestChallengeSlowValidation: a validation that outlasts the challenge
// POST's wait is answered "processing" with Retry-After: 1, and the
// authorization is decided later.
func TestChallengeSlowValidation(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := serveHTTP01(t, func(tok string) string {
		time.Sleep(acme.ChallengeWait + 300*time.Millisecond)
		return tok + "." + c.thumbprint()
	})
	defer stop()
	_, o := c.newOrder("slow.internal")
	var az authzObj
	c.post(o.Authorizations[0], nil).json(t, &az)
	a := c.post(az.Challenges[0].URL, map[string]any{})
	var ch struct{ Status string }
	a.json(t, &ch)
	if ch.Status != "processing" || a.header.Get("Retry-After") != "1" {
		t.Fatalf("ok/slow challenge POST: %s %v", a.body, a.header)
	}
	if got := c.waitAuthz(o.Authorizations[0]); got.Status != "valid" {
		t.Fatalf("authz %+v", got)
	}
}

func TestAuthzDeactivate(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	_, o := c.newOrder("a.internal")
	var az authzObj
	c.post(o.Authorizations[0], map[string]any{"status": "deactivated"}).json(t, &az)
	if az.Status != "deactivated" {
		t.Fatalf("ok/deactivate: %+v", az)
	}
	if typ, _ := c.post(o.Authorizations[0], map[string]any{"status": "valid"}).problem(t); typ != "malformed" {
		t.Fatalf("fail/set valid: %s", typ)
	}
	if typ, d := c.post(o.Authorizations[0], map[string]any{"status": "deactivated"}).problem(t); typ != "malformed" || !strings.Contains(d, "authorization is deactivated and cannot be deactivated") {
		t.Fatalf("fail/deactivate twice: %s %s", typ, d)
	}
	if a := c.post(c.e.base+"/acme/default/authz/nope", nil); a.status != 404 {
		t.Fatalf("fail/unknown authz: %d", a.status)
	}
}

// TestJWSRefusals: every outer-JWS check answers with its ACME error type.
func TestJWSRefusals(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	url := c.url("newOrder")
	body := []byte(`{"identifiers":[{"type":"dns","value":"a.internal"}]}`)
	t.Run("fail/replayed nonce", func(t *testing.T) {
		n := c.nonce()
		c.postRaw(url, sign(t, c.key, c.kid, n, url, body))
		if typ, _ := c.postRaw(url, sign(t, c.key, c.kid, n, url, body)).problem(t); typ != "badNonce" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/made-up nonce", func(t *testing.T) {
		if typ, _ := c.postRaw(url, sign(t, c.key, c.kid, "AAAAAAAAAAAAAAAAAAAAAAAAAA", url, body)).problem(t); typ != "badNonce" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/wrong url", func(t *testing.T) {
		if typ, _ := c.postRaw(url, sign(t, c.key, c.kid, c.nonce(), c.url("newAccount"), body)).problem(t); typ != "unauthorized" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/unknown kid", func(t *testing.T) {
		if typ, _ := c.postRaw(url, sign(t, c.key, c.e.base+"/acme/default/acct/nobody", c.nonce(), url, body)).problem(t); typ != "accountDoesNotExist" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/kid of another role", func(t *testing.T) {
		s := newRaw(t, "strict")
		if typ, _ := s.postRaw(s.url("newOrder"), sign(t, c.key, c.kid, s.nonce(), s.url("newOrder"), body)).problem(t); typ != "accountDoesNotExist" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/no nonce", func(t *testing.T) {
		if typ, d := c.postRaw(url, sign(t, c.key, c.kid, "", url, body)).problem(t); typ != "badNonce" || !strings.Contains(d, "no nonce") {
			t.Fatal(typ, d)
		}
	})
	// Headers no client library would send: signed here with go-jose
	// directly, or hand-made.
	signedWith := func(embedJWK bool, headers map[jose.HeaderKey]any) []byte {
		opts := &jose.SignerOptions{ExtraHeaders: headers, EmbedJWK: embedJWK}
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := sg.Sign(body)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(jws.FullSerialize())
	}
	// edited changes a flattened JWS's members after it was signed.
	edited := func(jws []byte, change func(map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(jws, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, _ := json.Marshal(m)
		return b
	}
	for _, tc := range []struct {
		name, typ, detail string
		jws               func() []byte
	}{
		{"fail/both jwk and kid", "malformed", "both jwk and kid", func() []byte {
			return signedWith(true, map[jose.HeaderKey]any{"kid": c.kid, "nonce": c.nonce(), "url": url})
		}},
		{"fail/neither jwk nor kid", "malformed", "neither jwk nor kid", func() []byte {
			return signedWith(false, map[jose.HeaderKey]any{"nonce": c.nonce(), "url": url})
		}},
		{"fail/unprotected header", "malformed", "unprotected header", func() []byte {
			return edited(signedWith(false, map[jose.HeaderKey]any{"kid": c.kid, "nonce": c.nonce(), "url": url}), func(m map[string]any) { m["header"] = map[string]any{"kid": c.kid} })
		}},
		{"fail/no payload member", "malformed", `no "payload" member`, func() []byte {
			return edited(signedWith(false, map[jose.HeaderKey]any{"kid": c.kid, "nonce": c.nonce(), "url": url}), func(m map[string]any) { delete(m, "payload") })
		}},
		{"fail/payload swapped", "malformed", "signature", func() []byte {
			return edited(signedWith(false, map[jose.HeaderKey]any{"kid": c.kid, "nonce": c.nonce(), "url": url}), func(m map[string]any) {
				m["payload"] = base64.RawURLEncoding.EncodeToString([]byte(`{"identifiers":[{"type":"dns","value":"b.internal"}]}`))
			})
		}},
		{"fail/a dot inside a part", "malformed", "does not parse", func() []byte {
			return edited(signedWith(false, map[jose.HeaderKey]any{"kid": c.kid, "nonce": c.nonce(), "url": url}), func(m map[string]any) { m["payload"] = m["payload"].(string) + ".e30" })
		}},
		{"fail/protected header not JSON", "malformed", "protected header is not JSON", func() []byte {
			b, _ := json.Marshal(map[string]string{"protected": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":`)), "payload": "", "signature": ""})
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if typ, d := c.postRaw(url, tc.jws()).problem(t); typ != tc.typ || !strings.Contains(d, tc.detail) {
				t.Fatalf("%s %q, want %s with %q", typ, d, tc.typ, tc.detail)
			}
		})
	}
	t.Run("fail/signed by another key", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if typ, _ := c.postRaw(url, sign(t, k, c.kid, c.nonce(), url, body)).problem(t); typ != "malformed" {
			t.Fatal(typ)
		}
	})
	for _, alg := range []string{"none", "HS256"} {
		t.Run("fail/alg "+alg, func(t *testing.T) {
			hdr, _ := json.Marshal(map[string]string{"alg": alg, "kid": c.kid, "nonce": c.nonce(), "url": url})
			jws, _ := json.Marshal(map[string]string{"protected": base64.RawURLEncoding.EncodeToString(hdr), "payload": base64.RawURLEncoding.EncodeToString(body), "signature": ""})
			a := c.postRaw(url, jws)
			var p struct{ Algorithms []string }
			a.json(t, &p)
			// RFC 8555 §6.2: the problem lists the algorithms accepted.
			if typ, _ := a.problem(t); typ != "badSignatureAlgorithm" || !slices.Equal(p.Algorithms, []string{"ES256", "ES384", "RS256", "EdDSA"}) {
				t.Fatalf("%s, algorithms %q", typ, p.Algorithms)
			}
		})
	}
	t.Run("fail/oversize body", func(t *testing.T) {
		a := c.postRaw(url, bytes.Repeat([]byte("a"), 200<<10))
		if typ, detail := a.problem(t); a.status != 413 || typ != "malformed" || !strings.Contains(detail, "larger than the limit") {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("fail/wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(sign(t, c.key, c.kid, c.nonce(), url, body))))
		req.Header.Set("Content-Type", "application/json")
		resp, _ := srv.client.Do(req)
		resp.Body.Close()
		if resp.StatusCode != 415 {
			t.Fatal(resp.StatusCode)
		}
	})
	t.Run("fail/not JSON", func(t *testing.T) {
		if typ, _ := c.postRaw(url, []byte("garbage")).problem(t); typ != "malformed" {
			t.Fatal(typ)
		}
	})
	t.Run("fail/jwk where kid is required", func(t *testing.T) {
		if typ, _ := c.postRaw(url, sign(t, c.key, "", c.nonce(), url, body)).problem(t); typ != "malformed" {
			t.Fatal(typ)
		}
	})
}

func TestKeyChange(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	other := newRaw(t, "default")
	other.register()
	inner := func(newKey *ecdsa.PrivateKey) []byte {
		old, _ := (&jose.JSONWebKey{Key: c.key.Public()}).MarshalJSON()
		p, _ := json.Marshal(map[string]any{"account": c.kid, "oldKey": json.RawMessage(old)})
		return sign(t, newKey, "", "", c.url("keyChange"), p)
	}
	t.Run("fail/key another account holds", func(t *testing.T) {
		a := c.postRaw(c.url("keyChange"), sign(t, c.key, c.kid, c.nonce(), c.url("keyChange"), inner(other.key.(*ecdsa.PrivateKey))))
		if a.status != 409 || a.header.Get("Location") != other.kid {
			t.Fatalf("%d %s", a.status, a.body)
		}
	})
	t.Run("fail/inner with a nonce", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		old, _ := (&jose.JSONWebKey{Key: c.key.Public()}).MarshalJSON()
		p, _ := json.Marshal(map[string]any{"account": c.kid, "oldKey": json.RawMessage(old)})
		bad := sign(t, k, "", "somenonce", c.url("keyChange"), p)
		if typ, _ := c.postRaw(c.url("keyChange"), sign(t, c.key, c.kid, c.nonce(), c.url("keyChange"), bad)).problem(t); typ != "malformed" {
			t.Fatal(typ)
		}
	})
	// Each check of RFC 8555 §7.3.5 on the inner JWS and its payload: the
	// refusal says which, and the account keeps answering to its old key.
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	oldJWK, _ := (&jose.JSONWebKey{Key: c.key.Public()}).MarshalJSON()
	otherJWK, _ := (&jose.JSONWebKey{Key: other.key.Public()}).MarshalJSON()
	payload := func(account string, oldKey []byte) []byte {
		p, _ := json.Marshal(map[string]any{"account": account, "oldKey": json.RawMessage(oldKey)})
		return p
	}
	badSig := func() []byte {
		var j map[string]string
		json.Unmarshal(inner(newKey), &j)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		var o map[string]string
		json.Unmarshal(sign(t, other, "", "", c.url("keyChange"), payload(c.kid, oldJWK)), &o)
		j["signature"] = o["signature"]
		b, _ := json.Marshal(j)
		return b
	}
	for _, tc := range []struct {
		name, typ, detail string
		inner             []byte
	}{
		{"fail/inner signed by kid, no jwk", "malformed", "must carry the new key as jwk", sign(t, newKey, c.kid, "", c.url("keyChange"), payload(c.kid, oldJWK))},
		{"fail/inner url is another", "malformed", "url must equal the outer one", sign(t, newKey, "", "", c.url("newOrder"), payload(c.kid, oldJWK))},
		{"fail/new key too weak", "badPublicKey", "1024 bits is too small", sign(t, weak, "", "", c.url("keyChange"), payload(c.kid, oldJWK))},
		{"fail/inner signature by another key", "malformed", "does not verify with its jwk", badSig()},
		{"fail/inner payload not an object", "malformed", "must be {account, oldKey}", sign(t, newKey, "", "", c.url("keyChange"), []byte(`["x"]`))},
		{"fail/account is another", "malformed", "not the account signing the outer JWS", sign(t, newKey, "", "", c.url("keyChange"), payload(other.kid, oldJWK))},
		{"fail/oldKey not a JWK", "malformed", "oldKey is not a JWK", sign(t, newKey, "", "", c.url("keyChange"), payload(c.kid, []byte(`{"kty":"nope"}`)))},
		{"fail/oldKey another account's", "unauthorized", "not the account's current key", sign(t, newKey, "", "", c.url("keyChange"), payload(c.kid, otherJWK))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ, d := c.postRaw(c.url("keyChange"), sign(t, c.key, c.kid, c.nonce(), c.url("keyChange"), tc.inner)).problem(t)
			if typ != tc.typ || !strings.Contains(d, tc.detail) {
				t.Fatalf("%s %q, want %s with %q", typ, d, tc.typ, tc.detail)
			}
			if a := c.post(c.kid, nil); a.status != 200 {
				t.Fatalf("the account no longer answers to its key: %d %s", a.status, a.body)
			}
		})
	}
	t.Run("ok/rollover", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		a := c.postRaw(c.url("keyChange"), sign(t, c.key, c.kid, c.nonce(), c.url("keyChange"), inner(k)))
		if a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if typ, _ := c.post(c.kid, nil).problem(t); typ != "malformed" {
			t.Fatalf("old key still works: %s", typ)
		}
		c.key = k
		if a := c.post(c.kid, nil); a.status != 200 {
			t.Fatalf("new key refused: %d", a.status)
		}
		// Journaled beside the store with both keys: a restored store
		// does not give the account back to the old key.
		acct, err := srv.run.Store.(store.ACMEStore).GetAccount(t.Context(), c.kid[strings.LastIndex(c.kid, "/")+1:])
		if err != nil {
			t.Fatal(err)
		}
		journal, err := os.ReadFile(api.WithdrawnPath(api.StoreDir(srv.run.Config)))
		if err != nil || !strings.Contains(string(journal), `{"kind":"acme-account-key","id":"`+acct.ID+`"`) || !strings.Contains(string(journal), `"successor_key":"`+acct.KeyThumbprint+`"`) {
			t.Fatalf("rollover not journaled: %v\n%s", err, journal)
		}
	})
}

// TestOrderAndAuthzExpire moves the server's clock past an order's
// lifetime: the order reads invalid, its authorization expired, and its
// challenge can no longer be started. Moved past acme.Retention more, the
// server prunes both with no restart (they answer 404), while the
// certificate of an order that was finalized stays downloadable. (Last in
// the file: the clock stays moved; everything else reads the same fake
// clock.)
func TestOrderAndAuthzExpire(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := c.serveKeyAuth()
	defer stop()
	doneLoc, done := c.readyOrder("kept.internal")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if a := c.post(done.Finalize, map[string]any{"csr": csrFor(t, key, "kept.internal")}); a.status != 200 {
		t.Fatalf("finalize: %d %s", a.status, a.body)
	}
	c.post(doneLoc, nil).json(t, &done)
	loc, o := c.newOrder("b.internal")
	srv.clock.Advance(25 * time.Hour)
	var cur orderObj
	c.post(loc, nil).json(t, &cur)
	if cur.Status != "invalid" {
		t.Fatalf("order %s after its lifetime, want invalid", cur.Status)
	}
	var az authzObj
	c.post(o.Authorizations[0], nil).json(t, &az)
	if az.Status != "expired" {
		t.Fatalf("authz %s, want expired", az.Status)
	}
	if typ, d := c.post(az.Challenges[0].URL, map[string]any{}).problem(t); typ != "malformed" || !strings.Contains(d, "expired") {
		t.Fatalf("challenge on an expired authorization: %s %s", typ, d)
	}
	waitServerCert(t)
	srv.clock.Advance(acme.Retention + time.Minute)
	waitServerCert(t)
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		orderGone := c.post(loc, nil).status == http.StatusNotFound
		authzGone := c.post(o.Authorizations[0], nil).status == http.StatusNotFound
		if orderGone && authzGone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired order (gone: %v) and authorization (gone: %v) not pruned", orderGone, authzGone)
		}
	}
	if a := c.post(doneLoc, nil); a.status != http.StatusNotFound {
		t.Fatalf("finalized order not pruned: %d", a.status)
	}
	if a := c.post(done.Certificate, nil); a.status != 200 || !strings.Contains(string(a.body), "BEGIN CERTIFICATE") {
		t.Fatalf("certificate of a pruned order: %d %s", a.status, a.body)
	}
}

// waitServerCert waits until the server's own certificate is renewed for
// the moved clock, as the tests' TLS clients need.
func waitServerCert(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testutil.DutyWait)
	for !srv.run.ServerCert.Current().NotAfter.After(srv.clock.Now().Add(time.Hour)) {
		if time.Now().After(deadline) {
			t.Fatal("server certificate not renewed after the clock moved")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInterruptedFinalize: an order left processing by a CA that stopped
// between its two finalize writes reads invalid with a serverInternal
// problem once the deadline passes, not processing until it expires.
// TestInterruptedFinalize plays a CA that stopped between finalize's
// writes: the order reads processing, then the certificate committed under
// the serial finalize reserved (valid, and downloadable), or, with none
// after minutes, invalid.
func TestInterruptedFinalize(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	other := newRaw(t, "default")
	other.register()
	accountOf := func(c *rawClient) string { return c.kid[strings.LastIndex(c.kid, "/")+1:] }
	as := srv.run.Store.(store.ACMEStore)
	for _, tc := range []struct {
		name, want string
		since      time.Duration
		// committed signs a certificate under the reserved serial for
		// this account, as finalize would have before the CA stopped.
		committed *rawClient
		legacy    bool // an order written before finalize reserved serials
	}{
		{name: "ok/processing a moment ago", want: "processing"},
		{name: "ok/certificate committed, then the CA stopped", want: "valid", committed: c},
		{name: "ok/certificate committed, the CA stopped minutes ago", want: "valid", committed: c, since: -6 * time.Minute},
		{name: "fail/processing for 6 minutes, nothing committed", want: "invalid", since: -6 * time.Minute},
		{name: "fail/the serial's certificate is another account's", want: "invalid", committed: other, since: -6 * time.Minute},
		{name: "fail/legacy order processing for 6 minutes", want: "invalid", since: -6 * time.Minute, legacy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc, _ := c.newOrder("a.internal")
			id := loc[strings.LastIndex(loc, "/")+1:]
			serial, err := srv.run.CA.ReserveSerial()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := as.UpdateOrder(context.Background(), id, func(o *store.ACMEOrder) error {
				o.Status, o.ProcessingSince = store.ACMEProcessing, srv.clock.Now().Add(tc.since)
				if !tc.legacy {
					o.PendingSerial = ca.SerialString(serial)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if tc.committed != nil {
				key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				der, _ := base64.RawURLEncoding.DecodeString(csrFor(t, key, "a.internal"))
				csr, _ := x509.ParseCertificateRequest(der)
				if _, err := srv.run.CA.Sign(context.Background(), &ca.SignRequest{Role: "default", CSR: csr, Requester: "acme:" + accountOf(tc.committed), Via: "acme", Serial: serial}); err != nil {
					t.Fatal(err)
				}
			}
			a := c.post(loc, nil)
			var cur struct {
				Status, Certificate string
				Error               struct{ Type, Detail string }
			}
			a.json(t, &cur)
			if cur.Status != tc.want {
				t.Fatalf("order %s, want %s", cur.Status, tc.want)
			}
			switch tc.want {
			case "processing":
				if a.header.Get("Retry-After") != "1" || cur.Certificate != "" {
					t.Fatalf("processing: Retry-After %q, certificate %q", a.header.Get("Retry-After"), cur.Certificate)
				}
			case "valid":
				dl := c.post(cur.Certificate, nil)
				blk, _ := pem.Decode(dl.body)
				if dl.status != 200 || blk == nil {
					t.Fatalf("download: %d %s", dl.status, dl.body)
				}
				if leaf, err := x509.ParseCertificate(blk.Bytes); err != nil || leaf.SerialNumber.Cmp(serial) != 0 {
					t.Fatalf("downloaded %v, want serial %x", err, serial)
				}
			case "invalid":
				if cur.Error.Type != "urn:ietf:params:acme:error:serverInternal" || !strings.Contains(cur.Error.Detail, "interrupted") || cur.Certificate != "" {
					t.Fatalf("error %+v, certificate %q", cur.Error, cur.Certificate)
				}
				if committed := !strings.Contains(cur.Error.Detail, "before a certificate was committed"); committed != tc.legacy {
					t.Fatalf("detail %q", cur.Error.Detail)
				}
			}
		})
	}
	// A reserved serial is never signed twice.
	serial, _ := srv.run.CA.ReserveSerial()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := base64.RawURLEncoding.DecodeString(csrFor(t, key, "a.internal"))
	csr, _ := x509.ParseCertificateRequest(der)
	req := &ca.SignRequest{Role: "default", CSR: csr, Requester: "acme:" + accountOf(c), Via: "acme", Serial: serial}
	if _, err := srv.run.CA.Sign(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.run.CA.Sign(context.Background(), req); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("fail/reserved serial signed twice: %v", err)
	}
}

// TestEABKeysAreCLISafe: no HMAC key starts with '-', which certbot's
// argument parser (and any getopt CLI) takes for an option, refusing
// "--eab-hmac-key -x..." one key in 64 without this; each is still 32
// bytes of base64url.
func TestEABKeysAreCLISafe(t *testing.T) {
	for i := range 500 {
		_, macKey, err := srv.eab.Create(context.Background(), "eab")
		if err != nil {
			t.Fatal(err)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(macKey); err != nil || len(raw) != 32 || strings.HasPrefix(macKey, "-") {
			t.Fatalf("key %d: %q (%v)", i, macKey, err)
		}
	}
}

// TestEABRefusals: each check of an external account binding (RFC 8555
// §7.3.4) on a role that requires one, with its problem type and detail.
// None of the refused attempts uses the binding up: the same KID and MAC
// key then register the account they were made for.
func TestEABRefusals(t *testing.T) {
	c := newRaw(t, "eab")
	b := newBinder(t, "eab")
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newAccount := c.url("newAccount")
	for _, tc := range []struct {
		name, typ, detail string
		eab               json.RawMessage
	}{
		{"fail/not a JWS", "malformed", "not a JWS with one HS256 signature", json.RawMessage(`{"protected":"e30","payload":"","signature":""}`)},
		{"fail/binding with a nonce", "malformed", "must not carry a nonce or a jwk", b.bind(newAccount, jwkOf(c.key), map[jose.HeaderKey]any{"nonce": "n"})},
		{"fail/binding url is another", "malformed", "url must be the newAccount URL", b.bind(c.url("newOrder"), jwkOf(c.key), nil)},
		{"fail/payload not a JWK", "malformed", "payload is not a JWK", b.bind(newAccount, []byte(`{"kty":"nope"}`), nil)},
		{"fail/binds another key", "unauthorized", "binds a different key than the account's", b.bind(newAccount, jwkOf(stranger), nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := c.post(newAccount, map[string]any{"termsOfServiceAgreed": true, "externalAccountBinding": tc.eab})
			if typ, d := a.problem(t); typ != tc.typ || !strings.Contains(d, tc.detail) {
				t.Fatalf("%d %s %q, want %s with %q", a.status, typ, d, tc.typ, tc.detail)
			}
		})
	}
	if a := c.post(newAccount, map[string]any{"termsOfServiceAgreed": true, "externalAccountBinding": b.bind(newAccount, jwkOf(c.key), nil)}); a.status != 201 {
		t.Fatalf("ok/the binding after the refusals: %d %s", a.status, a.body)
	}
}

// TestConcurrentFinalize: finalize requests for one ready order that arrive
// together sign once. Every other one is refused orderNotReady; none is an
// internal error (a refusal from inside the store's update used to come
// back wrapped, and was answered 500).
func TestConcurrentFinalize(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := c.serveKeyAuth()
	defer stop()
	_, o := c.readyOrder("race.internal")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payload, _ := json.Marshal(map[string]any{"csr": csrFor(t, key, "race.internal")})
	const n = 8
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = sign(t, c.key, c.kid, c.nonce(), o.Finalize, payload)
	}
	results := postTogether(t, o.Finalize, bodies)
	signed := 0
	for _, r := range results {
		switch {
		case r.status == 200:
			signed++
		case r.status == 403 && strings.Contains(string(r.body), "orderNotReady"):
		default:
			t.Errorf("finalize answered %d %s", r.status, r.body)
		}
	}
	if signed != 1 {
		t.Fatalf("%d finalize requests signed, want 1", signed)
	}
}

// TestConcurrentNewAccount: newAccount requests with one key that arrive
// together make one account; the others find it (200 with its URL), as a
// request a moment later would, rather than failing on the store's
// uniqueness check.
func TestConcurrentNewAccount(t *testing.T) {
	c := newRaw(t, "default")
	const n = 8
	bodies := make([][]byte, n)
	payload, _ := json.Marshal(map[string]any{"termsOfServiceAgreed": true})
	for i := range bodies {
		bodies[i] = sign(t, c.key, "", c.nonce(), c.url("newAccount"), payload)
	}
	results := postTogether(t, c.url("newAccount"), bodies)
	created := 0
	for _, r := range results {
		if r.status == 201 {
			created++
		} else if r.status != 200 {
			t.Errorf("newAccount answered %d %s", r.status, r.body)
		}
		if loc := r.header.Get("Location"); loc == "" || loc != results[0].header.Get("Location") {
			t.Errorf("Location %q, want one account for every answer (%q)", loc, results[0].header.Get("Location"))
		}
	}
	if created != 1 {
		t.Fatalf("%d accounts created for one key", created)
	}
}

// postTogether posts every body to url at once, over connections opened
// beforehand so that the requests arrive together rather than one TLS
// handshake apart, and returns the answers in order (status -1 and the
// error as body when a request could not be made).
func postTogether(t *testing.T, url string, bodies [][]byte) []answer {
	t.Helper()
	var wg sync.WaitGroup
	for range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := srv.client.Get(srv.dirURL("default")); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	out := make([]answer, len(bodies))
	start := make(chan struct{})
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
			req.Header.Set("Content-Type", "application/jose+json")
			resp, err := srv.client.Do(req)
			if err != nil {
				out[i] = answer{status: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out[i] = answer{resp.StatusCode, resp.Header, b}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// readyOrder makes an order for one name and validates its authorization
// over http-01 (the caller serves the answer), unless the order reused a
// valid one.
func (c *rawClient) readyOrder(name string) (string, orderObj) {
	c.t.Helper()
	loc, o := c.newOrder(name)
	c.validate(o)
	return loc, o
}

// validate has a pending one-name order's authorization validated over
// http-01 (the client must be serving its key authorization).
func (c *rawClient) validate(o orderObj) {
	c.t.Helper()
	if o.Status != "pending" {
		return
	}
	var az authzObj
	c.post(o.Authorizations[0], nil).json(c.t, &az)
	for _, ch := range az.Challenges {
		if ch.Type == "http-01" {
			c.post(ch.URL, map[string]any{})
		}
	}
	if got := c.waitAuthz(o.Authorizations[0]); got.Status != "valid" {
		c.t.Fatalf("authz %+v", got)
	}
}

// TestFinalizeOutlivesClient: a client that sends finalize and hangs up at
// once (a timeout, a killed certbot) still has its order signed: once the
// request is read and the CSR accepted, the work runs to the end whatever
// the connection does, and a later poll finds the order valid with its
// certificate. Before, the request's context ended with the connection:
// the order stayed ready, or went invalid after the processing commit with
// no certificate, and the client had to start over.
func TestFinalizeOutlivesClient(t *testing.T) {
	c := newRaw(t, "default")
	c.register()
	stop := c.serveKeyAuth()
	defer stop()
	tlsConf := srv.client.Transport.(*http.Transport).TLSClientConfig
	host := strings.TrimPrefix(srv.base, "https://")
	for i := range 4 {
		name := fmt.Sprintf("gone%d.internal", i)
		loc, o := c.readyOrder(name)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		payload, _ := json.Marshal(map[string]any{"csr": csrFor(t, key, name)})
		body := sign(t, c.key, c.kid, c.nonce(), o.Finalize, payload)
		conn, err := tls.Dial("tcp", host, tlsConf)
		if err != nil {
			t.Fatal(err)
		}
		path := strings.TrimPrefix(o.Finalize, srv.base)
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/jose+json\r\nContent-Length: %d\r\n\r\n%s", path, host, len(body), body)
		conn.Close() // gone before any answer
		var got orderObj
		for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(10 * time.Millisecond) {
			c.post(loc, nil).json(t, &got)
			if got.Status == "valid" || got.Status == "invalid" || time.Now().After(deadline) {
				break
			}
		}
		if got.Status != "valid" || got.Certificate == "" {
			t.Fatalf("order %d after the client hung up: %+v", i, got)
		}
	}
}
