package api_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"pkid/api"
	"pkid/internal/testutil"
)

// TestClockSteppedBack: the server's clock ran ten days ahead, long enough
// for it to renew its own certificate, sign its CRL and count a rate
// limit on that clock; then NTP stepped it back. With no restart, within a
// tick: the server presents a certificate valid on the clock (the one
// signed ahead is "not yet valid" to every client for ten days), /crl
// answers a CRL dated on the clock even to a client that sends the
// Last-Modified of the one signed ahead, and the rate limit counted ahead
// does not refuse the credential for ten days.
func TestClockSteppedBack(t *testing.T) {
	s := shared
	const step = 10 * 24 * time.Hour
	s.advance(t, 0)
	s.clock.Step(step)
	s.advance(t, 0) // the server certificate is renewed on the clock ahead
	aheadCert := s.servedCert(t)
	metered := tokenFor(t, s, "metered", func(o *api.TokenOptions) { o.Name = "meter-step" })
	csr := map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "step.metered.internal")}
	for i := range 2 {
		if r := s.do(t, "POST", "/v1/sign/metered", metered, csr, nil); r.StatusCode != 201 {
			t.Fatalf("ok/certificate %d of 2 on the clock ahead: %d", i+1, r.StatusCode)
		}
	}
	var aheadCRL *x509.RevocationList
	var lastModified string
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		rl, lm := getCRL(t, s, "")
		if !rl.ThisUpdate.Before(aheadCert.NotBefore) {
			aheadCRL, lastModified = rl, lm
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no CRL signed on the clock ahead")
		}
	}

	s.clock.Step(-step)
	roots := s.client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.base, "https://"), &tls.Config{RootCAs: roots, ServerName: "localhost", Time: s.clock.Now})
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still presents a certificate that is not valid on its clock: %v", err)
		}
	}
	if c := s.servedCert(t); c.NotBefore.After(s.clock.Now()) || c.SerialNumber.Cmp(aheadCert.SerialNumber) == 0 {
		t.Fatalf("served certificate %x valid from %s, clock %s", c.SerialNumber, c.NotBefore, s.clock.Now())
	}
	for deadline := time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		rl, _ := getCRL(t, s, lastModified)
		if rl != nil && !rl.ThisUpdate.After(s.clock.Now()) {
			if rl.Number.Cmp(aheadCRL.Number) <= 0 {
				t.Fatalf("the CRL number went back from %s to %s", aheadCRL.Number, rl.Number)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/crl still serves the CRL signed on the clock ahead (or 304 to its Last-Modified)")
		}
	}
	if r := s.do(t, "POST", "/v1/sign/metered", metered, csr, nil); r.StatusCode != 201 {
		t.Fatalf("fail/the rate limit counted on the clock ahead refuses: %d (Retry-After %s)", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// getCRL fetches /crl over plain HTTP, sending If-Modified-Since ims when
// it is not empty; it returns the CRL (nil for 304) and its Last-Modified.
func getCRL(t *testing.T, s *testServer, ims string) (*x509.RevocationList, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.http+"/crl", nil)
	if ims != "" {
		req.Header.Set("If-Modified-Since", ims)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, ims
	}
	der, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /crl: %d %v", resp.StatusCode, err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return rl, resp.Header.Get("Last-Modified")
}
