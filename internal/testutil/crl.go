package testutil

import (
	"crypto/x509"
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
