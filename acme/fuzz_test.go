package acme_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
)

// FuzzJWS posts arbitrary bodies as JWS to a real ACME resource: whatever
// arrives, the answer is a problem document below 500, never a panic.
func FuzzJWS(f *testing.F) {
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"","signature":""}`))
	f.Add([]byte(`{"protected":"eyJhbGciOiJub25lIn0","payload":"e30","signature":""}`))
	f.Add([]byte(`{"signatures":[]}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"protected":"!!!"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.base+"/acme/default/new-order", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/jose+json")
		resp, err := srv.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 || resp.StatusCode < 400 {
			t.Fatalf("status %d for %q", resp.StatusCode, body)
		}
	})
}

// FuzzSignedPayload signs arbitrary payloads with a registered account's
// key, so they pass the JWS checks and reach each resource's own parser:
// new account, account update, new order, finalize (on a ready order),
// authorization, order, revocation and key change. Whatever the payload,
// the answer is below 500 and the server keeps answering.
func FuzzSignedPayload(f *testing.F) {
	// Resources, by index: 0 newAccount, 1 account, 2 newOrder, 3 finalize,
	// 4 authorization, 5 order, 6 revokeCert, 7 keyChange.
	seeds := []struct {
		which   uint8
		payload string
	}{
		{0, `{"termsOfServiceAgreed":true}`}, {0, `{"onlyReturnExisting":true}`}, {0, `{"contact":[1]}`}, {0, `{"externalAccountBinding":{}}`},
		{1, ``}, {1, `{}`}, {1, `{"contact":["mailto:x@y"]}`}, {1, `{"contact":["tel:1"]}`}, {1, `{"status":"deactivated"}`},
		{2, `{"identifiers":[{"type":"dns","value":"a.strict.internal"}]}`}, {2, `{"identifiers":[{"type":"ip","value":"::1"},{"type":"dns","value":"*.x"}]}`},
		{2, `{"identifiers":[{"type":"email","value":"a@b"}]}`}, {2, `{"identifiers":[]}`}, {2, `{"notBefore":"2030-01-01T00:00:00Z","identifiers":[]}`}, {2, `null`},
		{2, `{"identifiers":[{"type":"dns","value":"a.strict.internal"}],"replaces":"q80B.AIA"}`}, {2, `{"identifiers":[{"type":"dns","value":"a.strict.internal"}],"replaces":"."}`},
		{2, `{"identifiers":[{"type":"dns","value":"a.strict.internal"}],"replaces":7}`},
		{3, `{"csr":"MIIB"}`}, {3, `{"csr":"!!"}`}, {3, `{}`}, {3, `{"csr":""}`}, {4, ``}, {4, `{"status":"deactivated"}`}, {4, `{"status":"valid"}`}, {5, ``}, {5, `[]`},
		{6, `{"certificate":"MIIB","reason":99}`}, {6, `{"certificate":"","reason":-1}`}, {7, `{"protected":"e30","payload":"e30","signature":"AA"}`}, {7, `"x"`},
	}
	for _, sd := range seeds {
		f.Add(sd.which, []byte(sd.payload))
	}
	// One CSR that finalizes, and one for a name the order does not hold.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, name := range []string{"web.strict.internal", "other.strict.internal"} {
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
		f.Add(uint8(3), []byte(`{"csr":"`+base64.RawURLEncoding.EncodeToString(der)+`"}`))
	}
	var (
		once     sync.Once
		base     *rawClient
		orderU   string
		order    orderObj
		orders   int // the orders base may have left unfinished
		accounts int // base accounts made so far
	)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		// An account leaves at most acme.unfinished_orders (300) orders
		// unfinished an hour; newOrder and finalize inputs leave one each.
		if orders >= 250 {
			once, orders = sync.Once{}, 0
		}
		once.Do(func() {
			// Each account from an address of its own: one address may
			// register acme.new_accounts (100) an hour.
			accounts++
			base = newRawFrom(t, "strict", net.IPv4(127, 1, byte(accounts>>8), byte(accounts)))
			base.register()
			orderU, order = base.newOrder("fuzz.strict.internal")
		})
		c := *base
		c.t = t
		urls := []string{c.url("newAccount"), c.kid, c.url("newOrder"), "", order.Authorizations[0], orderU,
			c.url("revokeCert"), c.url("keyChange")}
		url := urls[int(which)%len(urls)]
		if url == "" || url == c.url("newOrder") {
			orders++
		}
		if url == "" {
			// Finalize needs a ready order to get as far as the CSR.
			url = readyOrder(&c).Finalize
		}
		kid := c.kid
		if url == c.url("newAccount") {
			kid = "" // newAccount carries its jwk
		}
		a := c.postRaw(url, sign(t, c.key, kid, c.nonce(), url, payload))
		if a.status >= 500 {
			t.Fatalf("%s: status %d for %q: %s", url, a.status, payload, a.body)
		}
		if os.Getenv("PKID_FUZZ_TRACE") != "" {
			t.Logf("%d %d %.120s", which%8, a.status, a.body)
		}
		// A payload that may have deactivated the account or the order's
		// authorization (the client's right; JSON escapes can spell it
		// without the word, so the answer is read too) sends the next
		// input to a fresh account and order.
		if strings.Contains(string(payload), "deactivated") || strings.Contains(string(a.body), "deactivated") {
			once = sync.Once{}
		}
	})
}

// readyOrder makes an order for a name the strict role allows and
// validates it over http-01 (or reuses the account's valid authorization).
func readyOrder(c *rawClient) orderObj {
	c.t.Helper()
	stop := c.serveKeyAuth()
	defer stop()
	_, o := c.readyOrder("web.strict.internal")
	return o
}
