package testutil

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"testing"
)

// Fetch gets url with c and returns the body and headers of a 200 answer,
// failing the test on any other.
func Fetch(t testing.TB, c *http.Client, url string) ([]byte, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b, resp.Header
}

// FetchCRL gets url with c and parses the answer as a DER CRL, failing
// the test if either step fails.
func FetchCRL(t testing.TB, c *http.Client, url string) *x509.RevocationList {
	t.Helper()
	der, _ := Fetch(t, c, url)
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("CRL from %s: %v", url, err)
	}
	return rl
}

// ParseCRLs parses every CRL of a PEM bundle (/crl/bundle.pem), in order.
func ParseCRLs(t testing.TB, bundle []byte) []*x509.RevocationList {
	t.Helper()
	var out []*x509.RevocationList
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		rl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			t.Fatalf("CRL %d of the bundle: %v", len(out)+1, err)
		}
		out = append(out, rl)
	}
}
