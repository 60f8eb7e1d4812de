package api_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"pkid/internal/testutil"
)

// FuzzSign posts arbitrary bodies with arbitrary Authorization headers to
// the real sign endpoint: the bearer token parser, the strict JSON decoder,
// the TTL and the CSR intake. Whatever arrives, the answer is a problem
// document below 500, and a certificate only for the real token with a
// body that really is a request for one.
func FuzzSign(f *testing.F) {
	good := `{"csr":` + jsonString(csrPEM(f, testutil.LeafKey(f, "ec-p256"), "fz.internal")) + `,"ttl":"1h"}`
	f.Add("Bearer "+shared.tok, []byte(good))
	f.Add("Bearer "+shared.tok, []byte(`{"csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}`))
	f.Add("Bearer "+shared.tok, []byte(`{"csr":"x","ttl":"-5h"}`))
	f.Add("Bearer "+shared.tok, []byte(`{"csr":"x","unknown":1}`))
	f.Add("Bearer abc.def", []byte(good))
	f.Add("Bearer .", []byte(`{}`))
	f.Add("Basic Zm9vOmJhcg==", []byte(`[]`))
	f.Add("", []byte(`not json`))
	f.Fuzz(func(t *testing.T, auth string, body []byte) {
		if strings.ContainsFunc(auth, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return // not a header value a client can send
		}
		resp, out := fuzzDo(t, mustRequest(t, http.MethodPost, shared.base+"/v1/sign/default", body), auth)
		if resp.StatusCode == http.StatusCreated {
			if auth != "Bearer "+shared.tok {
				t.Fatalf("certificate for Authorization %q", auth)
			}
			return
		}
		if resp.StatusCode < 400 || !isProblem(resp, out) {
			t.Fatalf("status %d %q for %q %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), auth, body, out)
		}
	})
}

// FuzzAPI sends arbitrary bodies and queries, with the admin token, to the
// other endpoints that parse what a client sends: issue, revoke, tokens,
// the certificate list (its limit, status and cursor) and a token id. The
// answer is below 500, and any refusal is a problem document with a detail.
func FuzzAPI(f *testing.F) {
	f.Add(uint8(0), "", []byte(`{"common_name":"fz.internal","ttl":"1h","key_type":"ed25519"}`))
	f.Add(uint8(0), "", []byte(`{"dns_names":["a..internal"],"ip_addresses":["::ffff:1.2.3.4"],"uris":["%zz"]}`))
	f.Add(uint8(1), "", []byte(`{"serial":"00:FF","reason":"certificateHold"}`))
	f.Add(uint8(1), "", []byte(`{"serial":"`+strings.Repeat("f", 100)+`"}`))
	f.Add(uint8(2), "", []byte(`{"roles":["default","nope"],"ttl":"-1s","names":["x"]}`))
	f.Add(uint8(3), "limit=0&status=revoked&cursor=%00", []byte{})
	f.Add(uint8(3), "limit=1000&role=default&cursor=AAAA", []byte{})
	f.Add(uint8(4), "../../x", []byte{})
	f.Fuzz(func(t *testing.T, which uint8, arg string, body []byte) {
		var req *http.Request
		switch which % 5 {
		case 0:
			req = mustRequest(t, http.MethodPost, shared.base+"/v1/issue/default", body)
		case 1:
			req = mustRequest(t, http.MethodPost, shared.base+"/v1/revoke", body)
		case 2:
			req = mustRequest(t, http.MethodPost, shared.base+"/v1/tokens", body)
		case 3:
			if strings.ContainsFunc(arg, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '#' }) {
				return // not a query a client can send in a request line
			}
			req = mustRequest(t, http.MethodGet, shared.base+"/v1/certs", nil)
			req.URL.RawQuery = arg
		case 4:
			req = mustRequest(t, http.MethodDelete, shared.base+"/v1/tokens/"+url.PathEscape(arg), nil)
		}
		resp, out := fuzzDo(t, req, "Bearer "+shared.admin)
		if resp.StatusCode >= 400 && !isProblem(resp, out) {
			t.Fatalf("%s %s: status %d %q: %s", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Content-Type"), out)
		}
	})
}

// fuzzDo sends req as JSON with the Authorization header auth and returns
// the answer with its body read.
func fuzzDo(t *testing.T, req *http.Request, auth string) (*http.Response, []byte) {
	t.Helper()
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := shared.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, out
}

// isProblem reports whether a refusal is what every refusal must be: a
// problem document with a detail, and not a server error.
func isProblem(resp *http.Response, body []byte) bool {
	return resp.StatusCode < 500 && resp.Header.Get("Content-Type") == "application/problem+json" && bytes.Contains(body, []byte(`"detail"`))
}

// FuzzOCSP sends arbitrary bytes as OCSP requests, by GET (base64 in the
// path, slashes included) and by POST: the answer is an OCSP response or a
// client error, never a panic or a 500.
func FuzzOCSP(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add([]byte("\x30\x82\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, req := range []*http.Request{
			mustRequest(t, http.MethodGet, shared.http+"/ocsp/"+base64.StdEncoding.EncodeToString(raw), nil),
			mustRequest(t, http.MethodPost, shared.http+"/ocsp", raw),
		} {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("%s: status %d for %x", req.Method, resp.StatusCode, raw)
			}
		}
	})
}

func mustRequest(t *testing.T, method, url string, body []byte) *http.Request {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/ocsp-request")
	}
	return req
}
