package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/testutil"
	"pkid/store/storetest"
)

func fetch(t testing.TB, u string) ([]byte, http.Header) {
	t.Helper()
	return testutil.Fetch(t, http.DefaultClient, u)
}

// waitRevoked polls the plain-HTTP CRL and OCSP (GET and POST) until both
// say serial is revoked, failing after 2 seconds.
func waitRevoked(t *testing.T, s *testServer, leaf *x509.Certificate) {
	t.Helper()
	inter := s.run.CA.Intermediate()
	deadline := time.Now().Add(2 * time.Second)
	for {
		onCRL := false
		der, h := fetch(t, s.http+"/crl/"+s.run.CA.IssuerID())
		if h.Get("Content-Type") != "application/pkix-crl" || h.Get("ETag") == "" || h.Get("Last-Modified") == "" {
			t.Fatalf("CRL headers %v", h)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil || rl.CheckSignatureFrom(inter) != nil {
			t.Fatalf("CRL: %v", err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				onCRL = true
			}
		}
		req, _ := ocsp.CreateRequest(leaf, inter, &ocsp.RequestOptions{Hash: crypto.SHA256})
		getDER, gh := fetch(t, s.http+"/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)))
		if gh.Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("OCSP content type %q", gh.Get("Content-Type"))
		}
		resp, err := http.Post(s.http+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		postDER, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		g, err1 := ocsp.ParseResponseForCert(getDER, leaf, inter)
		p, err2 := ocsp.ParseResponseForCert(postDER, leaf, inter)
		if err1 != nil || err2 != nil {
			t.Fatalf("OCSP: %v %v", err1, err2)
		}
		if onCRL && g.Status == ocsp.Revoked && p.Status == ocsp.Revoked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not revoked within 2s: CRL %v, OCSP GET %d POST %d", onCRL, g.Status, p.Status)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestRevocationCommittedElsewhere: a revocation that reaches the store
// without passing through this server (another replica's, or here one
// written straight into the running server's store, so none of its
// revocation hooks runs) shows in /crl and /ocsp within 2 s, like one made
// here. Before, the CRL waited for its schedule (half of crl.validity) and
// a cached OCSP answer said good for up to half an hour.
func TestRevocationCommittedElsewhere(t *testing.T) {
	s := shared
	_, leaf := issueLeaf(t, s, "elsewhere.internal")
	inter := s.run.CA.Intermediate()
	req, err := ocsp.CreateRequest(leaf, inter, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := fetch(t, s.http+"/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)))
	if r, err := ocsp.ParseResponseForCert(der, leaf, inter); err != nil || r.Status != ocsp.Good {
		t.Fatalf("OCSP before: %v %v", r, err) // and now cached as good
	}
	storetest.Revoke(t, s.run.Store, ca.SerialString(leaf.SerialNumber), s.clock.Now(), "superseded")
	waitRevoked(t, s, leaf)
}

func issueLeaf(t *testing.T, s *testServer, name string) (*api.IssueResponse, *x509.Certificate) {
	t.Helper()
	var r api.IssueResponse
	if resp := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": name, "ttl": "1h"}, &r); resp.StatusCode != 201 {
		t.Fatalf("issue: %d", resp.StatusCode)
	}
	return &r, parseCert(t, r.Certificate)
}

func TestRevocationThroughEveryDoor(t *testing.T) {
	s := shared
	t.Run("rest admin", func(t *testing.T) {
		r, leaf := issueLeaf(t, s, "door1.internal")
		req, _ := ocsp.CreateRequest(leaf, s.run.CA.Intermediate(), nil)
		der, _ := fetch(t, s.http+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
		if g, err := ocsp.ParseResponseForCert(der, leaf, s.run.CA.Intermediate()); err != nil || g.Status != ocsp.Good {
			t.Fatalf("before revocation: %v %v", g, err)
		}
		s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": r.Serial, "reason": "affiliationChanged"}, nil)
		waitRevoked(t, s, leaf)
	})
	t.Run("mtls self", func(t *testing.T) {
		r, leaf := issueLeaf(t, s, "door2.internal")
		c := mtlsClient(t, s, r)
		resp, err := c.Post(s.base+"/v1/revoke/self", "application/json", strings.NewReader(`{"reason":"cessationOfOperation"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("self revoke: %d", resp.StatusCode)
		}
		waitRevoked(t, s, leaf)
		resp, _ = c.Post(s.base+"/v1/revoke/self", "application/json", strings.NewReader(`{}`))
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("a revoked certificate authenticated: %d", resp.StatusCode)
		}
	})
	t.Run("admin socket", func(t *testing.T) {
		r, leaf := issueLeaf(t, s, "door3.internal")
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(s.dir, "pkid.sock"))
		}}}
		b, _ := json.Marshal(map[string]string{"serial": r.Serial, "reason": "privilegeWithdrawn"})
		resp, err := hc.Post("http://pkid/revoke", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("socket revoke: %d", resp.StatusCode)
		}
		waitRevoked(t, s, leaf)
	})
}

func mtlsClient(t *testing.T, s *testServer, r *api.IssueResponse) *http.Client {
	t.Helper()
	pair, err := tls.X509KeyPair([]byte(r.Certificate+r.Chain[0]), []byte(r.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	tc := s.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.Certificates = []tls.Certificate{pair}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func TestOCSPUnknownAndMalformed(t *testing.T) {
	s := shared
	_, leaf := issueLeaf(t, s, "unknown.internal")
	fake := *leaf
	fake.SerialNumber = new(big.Int).Add(leaf.SerialNumber, big.NewInt(1))
	req, _ := ocsp.CreateRequest(&fake, s.run.CA.Intermediate(), nil)
	der, _ := fetch(t, s.http+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
	if r, err := ocsp.ParseResponse(der, s.run.CA.Intermediate()); err != nil || r.Status != ocsp.Unknown {
		t.Fatalf("never issued: %v %v", r, err)
	}
	for _, path := range []string{"/ocsp/not-base64!!", "/ocsp/" + base64.StdEncoding.EncodeToString([]byte("junk"))} {
		der, _ := fetch(t, s.http+path)
		if !bytes.Equal(der, ocsp.MalformedRequestErrorResponse) {
			t.Fatalf("%s: %x", path, der)
		}
	}
	// A real certificate's serial, asked of another issuer (here the root,
	// whose name and key hashes are not the intermediate's): RFC 6960's
	// unauthorized, not a status this CA cannot vouch for. By SHA-1 and
	// SHA-256 issuer hashes alike.
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		req, _ := ocsp.CreateRequest(leaf, s.run.CA.Root(), &ocsp.RequestOptions{Hash: h})
		der, _ := fetch(t, s.http+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
		if !bytes.Equal(der, ocsp.UnauthorizedErrorResponse) {
			t.Fatalf("another issuer (%v): %x", h, der)
		}
		req, _ = ocsp.CreateRequest(leaf, s.run.CA.Intermediate(), &ocsp.RequestOptions{Hash: h})
		der, _ = fetch(t, s.http+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
		if r, err := ocsp.ParseResponse(der, s.run.CA.Intermediate()); err != nil || r.Status != ocsp.Good {
			t.Fatalf("this issuer (%v): %v %v", h, r, err)
		}
	}
}

// TestOCSPCacheHeaders: an HTTP cache may keep a GET answer five minutes,
// never past its nextUpdate (RFC 5019 §6.2), which for a certificate that
// expires sooner is its notAfter; error statuses and POST answers are not
// to be cached at all.
func TestOCSPCacheHeaders(t *testing.T) {
	s := shared
	get := func(t *testing.T, ttl string) (*ocsp.Response, http.Header) {
		t.Helper()
		var r api.IssueResponse
		if resp := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]any{"common_name": "cache" + ttl + ".internal", "ttl": ttl}, &r); resp.StatusCode != 201 {
			t.Fatalf("issue: %d", resp.StatusCode)
		}
		leaf := parseCert(t, r.Certificate)
		req, _ := ocsp.CreateRequest(leaf, s.run.CA.Intermediate(), nil)
		der, h := fetch(t, s.http+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
		g, err := ocsp.ParseResponseForCert(der, leaf, s.run.CA.Intermediate())
		if err != nil || g.Status != ocsp.Good || g.NextUpdate.After(leaf.NotAfter) {
			t.Fatalf("ttl %s: %+v %v (notAfter %s)", ttl, g, err, leaf.NotAfter)
		}
		return g, h
	}
	// RFC 5019 §6.2: max-age=N, public, no-transform, must-revalidate.
	maxAge := func(h http.Header) int {
		age, rest, ok := strings.Cut(strings.TrimPrefix(h.Get("Cache-Control"), "max-age="), ", ")
		n, err := strconv.Atoi(age)
		if !ok || err != nil || rest != "public, no-transform, must-revalidate" {
			return -1
		}
		return n
	}
	t.Run("ok/long-lived: five minutes", func(t *testing.T) {
		g, h := get(t, "1h")
		if maxAge(h) != 300 || h.Get("ETag") == "" {
			t.Fatalf("Cache-Control %q ETag %q", h.Get("Cache-Control"), h.Get("ETag"))
		}
		// Last-Modified is thisUpdate and Expires nextUpdate (§6.2).
		if h.Get("Last-Modified") != g.ThisUpdate.UTC().Format(http.TimeFormat) || h.Get("Expires") != g.NextUpdate.UTC().Format(http.TimeFormat) {
			t.Fatalf("Last-Modified %q Expires %q; thisUpdate %s nextUpdate %s", h.Get("Last-Modified"), h.Get("Expires"), g.ThisUpdate, g.NextUpdate)
		}
	})
	t.Run("ok/expires in 2 minutes: until nextUpdate", func(t *testing.T) {
		g, h := get(t, "2m")
		if age := maxAge(h); age < 100 || age > 120 || g.NextUpdate.Before(s.clock.Now().Add(time.Duration(age)*time.Second)) {
			t.Fatalf("Cache-Control %q, nextUpdate %s, now %s", h.Get("Cache-Control"), g.NextUpdate, s.clock.Now())
		}
	})
	t.Run("fail/malformed: not cached", func(t *testing.T) {
		if _, h := fetch(t, s.http+"/ocsp/"+base64.StdEncoding.EncodeToString([]byte("junk"))); h.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q", h.Get("Cache-Control"))
		}
	})
	t.Run("ok/POST: not cached", func(t *testing.T) {
		_, leaf := issueLeaf(t, s, "cachepost.internal")
		req, _ := ocsp.CreateRequest(leaf, s.run.CA.Intermediate(), nil)
		resp, err := http.Post(s.http+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	})
}

func TestCRLPEMAndBundle(t *testing.T) {
	s := shared
	p, h := fetch(t, s.http+"/crl.pem")
	if b, _ := pem.Decode(p); b == nil || b.Type != "X509 CRL" || h.Get("ETag") == "" {
		t.Fatalf("crl.pem: %q", p)
	}
	bundle, _ := fetch(t, s.http+"/crl/bundle.pem")
	crls := testutil.ParseCRLs(t, bundle)
	if len(crls) != 2 || crls[0].CheckSignatureFrom(s.run.CA.Root()) != nil || crls[1].CheckSignatureFrom(s.run.CA.Intermediate()) != nil {
		t.Fatalf("bundle: %d CRLs", len(crls))
	}
	root, _ := fetch(t, s.http+"/v1/ca/root.crl")
	testutil.LintCRL(t, root)
	// Conditional GET: the ETag gives 304.
	req, _ := http.NewRequest("GET", s.http+"/crl", nil)
	_, hh := fetch(t, s.http+"/crl")
	req.Header.Set("If-None-Match", hh.Get("ETag"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	// If-Modified-Since: 304 for the Last-Modified served, in any of
	// HTTP's date forms; any other date gets the CRL. A later one is the
	// Last-Modified of a CRL signed while the clock ran ahead, and the
	// CRL served now may be dated before it (TestClockSteppedBack).
	lm, err := http.ParseTime(hh.Get("Last-Modified"))
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(2 * time.Second) // a second after Last-Modified is in the past
	for ims, want := range map[string]int{
		hh.Get("Last-Modified"):                      304,
		lm.Format(time.RFC850):                       304,
		lm.Add(-time.Second).Format(http.TimeFormat): 200,
		lm.Add(time.Second).Format(http.TimeFormat):  200,
		lm.Add(time.Hour).Format(http.TimeFormat):    200,
	} {
		req, _ := http.NewRequest("GET", s.http+"/crl", nil)
		req.Header.Set("If-Modified-Since", ims)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("If-Modified-Since %q (Last-Modified %q): %d, want %d", ims, hh.Get("Last-Modified"), resp.StatusCode, want)
		}
	}
}

// TestRootCRLReload: a new certs/root.crl (as `pkid ca root-crl` writes
// it) is served without a restart; one not signed by the root is refused.
func TestRootCRLReload(t *testing.T) {
	s := shared
	before, _ := fetch(t, s.http+"/v1/ca/root.crl")
	old, _ := x509.ParseRevocationList(before)
	tc := testutil.CA(t, "ec-p256")
	der, err := ca.RootCRL(tc.Root, testutil.RootKey(t, "ec-p256"), []x509.RevocationListEntry{{SerialNumber: big.NewInt(77), RevocationTime: s.clock.Now().UTC(), ReasonCode: 1}}, s.clock.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, "certs", "root.crl")
	os.WriteFile(path+".tmp", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
	os.Rename(path+".tmp", path)
	deadline := time.Now().Add(testutil.DutyWait)
	for {
		got, _ := fetch(t, s.http+"/v1/ca/root.crl")
		rl, _ := x509.ParseRevocationList(got)
		if rl.Number.Cmp(old.Number) > 0 && len(rl.RevokedCertificateEntries) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("root CRL not reloaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The new CRL expires within a day: /healthz warns.
	var h map[string]any
	s.do(t, "GET", "/healthz", "", nil, &h)
	if w, _ := h["warnings"].([]any); len(w) == 0 || !strings.Contains(w[0].(string), "root CRL expires") {
		t.Fatalf("healthz %v", h)
	}
	// A file with an older number (an old backup copied back, say) is
	// refused: the CRL served stays, and /healthz says why until a newer
	// file replaces it.
	served, _ := fetch(t, s.http+"/v1/ca/root.crl")
	older, err := ca.RootCRL(tc.Root, testutil.RootKey(t, "ec-p256"), nil, s.clock.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write := func(der []byte) {
		os.WriteFile(path+".tmp", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
		os.Rename(path+".tmp", path)
	}
	write(older)
	warned := func(want string) bool {
		var h map[string]any
		s.do(t, "GET", "/healthz", "", nil, &h)
		w, _ := h["warnings"].([]any)
		for _, x := range w {
			if strings.Contains(x.(string), want) {
				return true
			}
		}
		return false
	}
	deadline = time.Now().Add(testutil.DutyWait)
	for !warned("is not newer than the one served") {
		if time.Now().After(deadline) {
			t.Fatal("/healthz does not say the older root CRL was refused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if now, _ := fetch(t, s.http+"/v1/ca/root.crl"); !bytes.Equal(now, served) {
		t.Fatal("the older root CRL replaced the one served")
	}
	newer, err := ca.RootCRL(tc.Root, testutil.RootKey(t, "ec-p256"), nil, s.clock.Now().Add(time.Second), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write(newer)
	deadline = time.Now().Add(testutil.DutyWait)
	for warned("is not newer") {
		if time.Now().After(deadline) {
			t.Fatal("/healthz still warns after a newer root CRL was loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCRLRefreshOnSchedule: moving the injected clock past half of
// crl.validity makes the publisher sign a new CRL, served over HTTPS with
// no restart and no revocation.
func TestCRLRefreshOnSchedule(t *testing.T) {
	s := shared
	get := func() *x509.RevocationList { return testutil.FetchCRL(t, s.client, s.base+"/crl") }
	before := get()
	s.advance(t, 13*time.Hour) // crl.validity is 24h
	deadline := time.Now().Add(testutil.DutyWait)
	for {
		now := get()
		if now.Number.Cmp(before.Number) > 0 && now.ThisUpdate.After(before.ThisUpdate.Add(12*time.Hour)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new CRL after the clock moved: number %s, thisUpdate %s", now.Number, now.ThisUpdate)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntermediateExpiredHalts: past the intermediate's notAfter nothing
// is issued (503), and /healthz says "halted" and why, as for a revoked
// intermediate, where it said "ok" with a warning in the future tense.
func TestIntermediateExpiredHalts(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), nil)
	s := startServer(t, dir, ports)
	defer s.stop()
	end := s.run.CA.Intermediate().NotAfter
	long := tokenFor(t, s, "default", func(o *api.TokenOptions) { o.TTL = end.Sub(s.clock.Now()) + time.Hour }) // outlives the intermediate
	s.clock.Advance(end.Sub(s.clock.Now()) + time.Second)
	// Its certificates, the server's own included, have ended on this
	// clock too: look without verifying.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var h struct {
		Status   string
		Warnings []string
	}
	resp, err := hc.Get(s.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	want := "the intermediate expired at " + end.UTC().Format(time.RFC3339)
	if h.Status != "halted" || len(h.Warnings) != 1 || !strings.HasPrefix(h.Warnings[0], want) {
		t.Fatalf("healthz %+v, want halted: %s", h, want)
	}
	req, _ := http.NewRequest("POST", s.base+"/v1/sign/default", strings.NewReader(testutil.JSON(t, map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "late.internal")})))
	req.Header.Set("Authorization", "Bearer "+long)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("sign after the intermediate ended: %d", resp.StatusCode)
	}
}

// TestIntermediateRevokedHaltsIssuance: once the root CRL lists the
// intermediate, pkid issues nothing (503 naming why) while it keeps
// serving CRLs, and /healthz says halted.
func TestIntermediateRevokedHaltsIssuance(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), nil)
	s := startServer(t, dir, ports)
	defer s.stop()
	csr := map[string]string{"csr": csrPEM(t, testutil.LeafKey(t, "ec-p256"), "h.internal")}
	if r := s.do(t, "POST", "/v1/sign/default", s.tok, csr, nil); r.StatusCode != 201 {
		t.Fatalf("ok/sign before: %d", r.StatusCode)
	}
	tc := testutil.CA(t, "ec-p256")
	der, err := ca.RootCRL(tc.Root, testutil.RootKey(t, "ec-p256"), []x509.RevocationListEntry{{SerialNumber: tc.Intermediate.SerialNumber, RevocationTime: s.clock.Now().UTC(), ReasonCode: 1}}, s.clock.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "certs", "root.crl")
	os.WriteFile(path+".tmp", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
	os.Rename(path+".tmp", path)
	deadline := time.Now().Add(testutil.DutyWait)
	for {
		var h map[string]any
		s.do(t, "GET", "/healthz", "", nil, &h)
		if h["status"] == "halted" {
			if w, _ := h["warnings"].([]any); len(w) == 0 || !strings.Contains(w[0].(string), "intermediate") {
				t.Fatalf("healthz %v", h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not halted: %v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var p api.Problem
	if r := s.do(t, "POST", "/v1/sign/default", s.tok, csr, &p); r.StatusCode != 503 || !strings.Contains(p.Detail, "keyCompromise") {
		t.Fatalf("fail/sign after: %d %+v", r.StatusCode, p)
	}
	if r := s.do(t, "POST", "/v1/issue/default", s.tok, map[string]string{"common_name": "h.internal"}, &p); r.StatusCode != 503 {
		t.Fatalf("fail/issue after: %d %+v", r.StatusCode, p)
	}
	testutil.FetchCRL(t, http.DefaultClient, s.http+"/crl") // still served
}

// TestIntermediateExpiryWarned: within 60 days of the intermediate's
// notAfter, /healthz warns (certificates are cut to end then).
func TestIntermediateExpiryWarned(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), nil)
	end := testutil.CA(t, "ec-p256").Intermediate.NotAfter
	s := startServerAt(t, dir, ports, end.Add(-30*24*time.Hour))
	defer s.stop()
	var h map[string]any
	s.do(t, "GET", "/healthz", "", nil, &h)
	w, _ := h["warnings"].([]any)
	if !slices.ContainsFunc(w, func(v any) bool { return strings.Contains(v.(string), "the intermediate expires at") }) {
		t.Fatalf("healthz %v", h)
	}
}

// TestOCSPResponderRenewed: an Ed25519 intermediate answers OCSP through a
// delegated responder certificate of 30 days; with the clock moved past two
// thirds of it, the server issues a new one and answers with it, with no
// restart (before, it kept the first until it expired and every answer
// failed to verify); revoked, it is replaced at once.
func TestOCSPResponderRenewed(t *testing.T) {
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ed25519", ports.HTTPSAddr(), ports.HTTPAddr(), nil)
	s := startServer(t, dir, ports)
	defer s.stop()
	_, leaf := issueLeaf(t, s, "responder.internal")
	inter := s.run.CA.Intermediate()
	req, err := ocsp.CreateRequest(leaf, inter, nil)
	if err != nil {
		t.Fatal(err)
	}
	responder := func() *x509.Certificate {
		t.Helper()
		der, _ := fetch(t, s.http+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
		r, err := ocsp.ParseResponseForCert(der, leaf, inter)
		if err != nil || r.Status != ocsp.Good || r.Certificate == nil {
			t.Fatalf("OCSP answer: %+v %v", r, err)
		}
		return r.Certificate
	}
	first := responder()
	if now := s.clock.Now(); first.NotAfter.Sub(now) > 31*24*time.Hour || now.Before(first.NotBefore) {
		t.Fatalf("first responder valid %s to %s", first.NotBefore, first.NotAfter)
	}
	s.advance(t, 21*24*time.Hour)
	deadline := time.Now().Add(testutil.DutyWait)
	var renewed *x509.Certificate
	for {
		r := responder()
		if now := s.clock.Now(); r.SerialNumber.Cmp(first.SerialNumber) != 0 && !now.Before(r.NotBefore) && r.NotAfter.Sub(now) > 29*24*time.Hour {
			testutil.LintCertificate(t, r.Raw)
			renewed = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still answered by responder %x (valid to %s) at %s", first.SerialNumber, r.NotAfter, s.clock.Now())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its key leaked: once an admin revokes it, the answers come from a new
	// responder with a new key, on the same clock.
	if resp := s.do(t, "POST", "/v1/revoke", s.admin, map[string]string{"serial": ca.SerialString(renewed.SerialNumber), "reason": "keyCompromise"}, nil); resp.StatusCode != 200 {
		t.Fatalf("revoke the responder: %d", resp.StatusCode)
	}
	for deadline = time.Now().Add(testutil.DutyWait); ; time.Sleep(20 * time.Millisecond) {
		r := responder()
		if r.SerialNumber.Cmp(renewed.SerialNumber) != 0 && !bytes.Equal(r.RawSubjectPublicKeyInfo, renewed.RawSubjectPublicKeyInfo) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still answered by the revoked responder %x", renewed.SerialNumber)
		}
	}
}
