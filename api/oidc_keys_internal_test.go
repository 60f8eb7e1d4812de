package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"pkid/internal/testutil"
)

// TestIssuerKeysDownload: of a key set, only the public signing keys that
// parse are kept; a set with none, one too large, or an answer that is not
// a key set is an error naming the URL.
func TestIssuerKeysDownload(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig := testutil.JSON(t, jose.JSONWebKey{Key: priv.Public(), KeyID: "sig", Algorithm: "ES256", Use: "sig"})
	enc := testutil.JSON(t, jose.JSONWebKey{Key: priv.Public(), KeyID: "enc", Use: "enc"})
	private := testutil.JSON(t, jose.JSONWebKey{Key: priv, KeyID: "private", Algorithm: "ES256"})
	oct := `{"kty":"oct","kid":"oct","k":"c2VjcmV0"}`
	future := `{"kty":"ML-DSA","kid":"future","pub":"AAAA"}`
	for _, tc := range []struct {
		name, body string
		status     int
		kids       []string
		err        string
	}{
		{"ok/signing keys kept, the rest skipped", `{"keys":[` + strings.Join([]string{enc, private, oct, future, sig}, ",") + `]}`, 200, []string{"sig"}, ""},
		{"fail/no signing key", `{"keys":[` + enc + `,` + oct + `]}`, 200, nil, "no public signing key"},
		{"fail/empty set", `{"keys":[]}`, 200, nil, "no public signing key"},
		{"fail/not a key set", `<html>sign in</html>`, 200, nil, "not a JSON key set"},
		{"fail/too large", `{"keys":[` + strings.Repeat(" ", maxJWKS) + `]}`, 200, nil, "larger than"},
		{"fail/status", `nope`, 404, nil, "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Cache-Control") != "no-cache" {
					t.Errorf("Cache-Control %q: a cache in between could hide a new key", r.Header.Get("Cache-Control"))
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			k := &issuerKeys{url: srv.URL + "/jwks", hc: srv.Client(), now: time.Now}
			keys, err := k.download()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), srv.URL+"/jwks") {
					t.Fatalf("got %v, want an error with %q and the URL", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, key := range keys {
				kids = append(kids, key.KeyID)
			}
			if strings.Join(kids, ",") != strings.Join(tc.kids, ",") {
				t.Fatalf("kept %v, want %v", kids, tc.kids)
			}
		})
	}
}

// FuzzIssuerKeys sends arbitrary tokens through prepare and
// VerifySignature with a key set held (no fetch is due): neither panics,
// and a payload comes back only for a token the held key really signed.
func FuzzIssuerKeys(f *testing.F) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		f.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		f.Fatal(err)
	}
	good, err := jws.CompactSerialize()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(strings.Replace(good, ".", "x.", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("..")
	algs := oidcAlgs
	f.Fuzz(func(t *testing.T, raw string) {
		k := &issuerKeys{url: "https://issuer.invalid/jwks", now: time.Now, algs: algs, keys: []jose.JSONWebKey{pub}, tried: time.Now()}
		if err := k.prepare(context.Background(), raw); err != nil && !strings.Contains(err.Error(), "could not be fetched") {
			t.Fatalf("prepare: %v", err)
		}
		payload, err := k.VerifySignature(context.Background(), raw)
		if err != nil {
			return
		}
		parsed, perr := jose.ParseSignedCompact(raw, algs)
		if perr != nil {
			t.Fatalf("payload %q for a token that does not parse: %v", payload, perr)
		}
		if _, verr := parsed.Verify(priv.Public()); verr != nil {
			t.Fatalf("payload %q for a token the key did not sign: %v", payload, verr)
		}
	})
}
