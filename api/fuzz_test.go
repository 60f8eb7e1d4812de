package api_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
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
		req, _ := http.NewRequest(http.MethodPost, shared.base+"/v1/sign/default", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := shared.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			if auth != "Bearer "+shared.tok {
				t.Fatalf("certificate for Authorization %q", auth)
			}
			return
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || resp.Header.Get("Content-Type") != "application/problem+json" || !bytes.Contains(out, []byte(`"detail"`)) {
			t.Fatalf("status %d %q for %q %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), auth, body, out)
		}
	})
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
