package testutil

import (
	"crypto/x509"
	"io"
	"net/http"
	"testing"
)

// FetchCRL gets url with c and parses the answer as a DER CRL, failing
// the test if either step fails.
func FetchCRL(t testing.TB, c *http.Client, url string) *x509.RevocationList {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("CRL from %s: %v", url, err)
	}
	return rl
}
