package acme_test

import (
	"bytes"
	"net/http"
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
