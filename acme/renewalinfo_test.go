package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	legoapi "github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"

	"pkid/internal/testutil"
)

// issueRaw takes a one-name order through finalize and returns the leaf.
func (c *rawClient) issueRaw(name string) *x509.Certificate {
	c.t.Helper()
	loc, o := c.readyOrder(name)
	o = c.finalize(loc, o, name)
	blk, _ := pem.Decode(c.post(o.Certificate, nil).body)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		c.t.Fatal(err)
	}
	return leaf
}

// finalize finalizes a ready order with a CSR for name and a fresh key,
// and returns the order as it reads afterwards.
func (c *rawClient) finalize(loc string, o orderObj, name string) orderObj {
	c.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if a := c.post(o.Finalize, map[string]any{"csr": csrFor(c.t, key, name)}); a.status != 200 {
		c.t.Fatalf("finalize %s: %d %s", name, a.status, a.body)
	}
	c.post(loc, nil).json(c.t, &o)
	return o
}

// ariClient registers an account of the default role that answers http-01
// until the test ends, and has it issued a certificate for name; it
// returns the leaf and lego's RFC 9773 identifier of it.
func ariClient(t *testing.T, name string) (*rawClient, *x509.Certificate, string) {
	t.Helper()
	c := newRaw(t, "default")
	c.register()
	t.Cleanup(c.serveKeyAuth())
	leaf := c.issueRaw(name)
	id, err := legoapi.MakeARICertID(leaf)
	if err != nil {
		t.Fatal(err)
	}
	return c, leaf, id
}

type renewalInfo struct {
	SuggestedWindow struct{ Start, End time.Time } `json:"suggestedWindow"`
	ExplanationURL  string                         `json:"explanationURL"`
}

// getRenewalInfo GETs role's renewalInfo for a certificate identifier.
func getRenewalInfo(t *testing.T, role, id string) (int, http.Header, renewalInfo, string) {
	t.Helper()
	dir := newRaw(t, role).url("renewalInfo")
	resp, err := srv.client.Get(dir + "/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ri renewalInfo
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &ri); err != nil {
			t.Fatalf("renewalInfo %s: %v", body, err)
		}
		return resp.StatusCode, resp.Header, ri, string(body)
	}
	var p struct{ Type, Detail string }
	json.Unmarshal(body, &p)
	return resp.StatusCode, resp.Header, ri, p.Type + " " + p.Detail
}

// TestRenewalInfo: RFC 9773 §4 with lego's own certificate identifier,
// so pkid reads the identifier the way clients write it.
func TestRenewalInfo(t *testing.T) {
	c, leaf, id := ariClient(t, "ari.internal")
	t.Run("ok/valid: two thirds of the lifetime", func(t *testing.T) {
		status, h, ri, body := getRenewalInfo(t, "default", id)
		if ri.ExplanationURL != "" {
			t.Fatalf("a valid certificate needs no explanation: %s", body)
		}
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		end := leaf.NotBefore.Add(life * 2 / 3).Truncate(time.Second)
		if status != 200 || !ri.SuggestedWindow.End.Equal(end) || !ri.SuggestedWindow.Start.Equal(leaf.NotBefore.Add(life*2/3-life/10).Truncate(time.Second)) {
			t.Fatalf("%d %s, want a window ending %s", status, body, end)
		}
		// The role's 24 h certificate: ask again in an hour, in seconds.
		if h.Get("Retry-After") != "3600" || h.Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v", h)
		}
	})
	t.Run("ok/HEAD", func(t *testing.T) {
		resp, err := srv.client.Head(c.url("renewalInfo") + "/" + id)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("HEAD: %v %v", resp, err)
		}
		resp.Body.Close()
	})
	aki, serial, _ := strings.Cut(id, ".")
	for _, tc := range []struct {
		name, role, id string
		status         int
		detail         string
	}{
		{"fail/no dot", "default", aki + serial, 400, "base64url(authority key identifier)"},
		{"fail/padded", "default", id + "=", 400, "outside the base64url alphabet"},
		{"fail/negative serial", "default", aki + ".gA", 400, "negative"},
		{"fail/unknown serial", "default", aki + ".AQ", 404, "no certificate with serial 1 from issuer"},
		{"fail/another issuer's key identifier", "default", "q80B." + serial, 404, "from issuer abcd01"},
		{"fail/another role's directory", "wild", id, 404, `issued under role "default", not "wild"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, _, body := getRenewalInfo(t, tc.role, tc.id)
			if status != tc.status || !strings.Contains(body, tc.detail) || !strings.Contains(body, "urn:ietf:params:acme:error:malformed") || h.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s, want %d saying %q", status, body, tc.status, tc.detail)
			}
		})
	}
	t.Run("fail/POST", func(t *testing.T) {
		a := c.post(c.url("renewalInfo")+"/"+id, nil)
		if typ, d := a.problem(t); a.status != 405 || typ != "malformed" || !strings.Contains(d, "read with GET") {
			t.Fatalf("POST-as-GET: %d %s", a.status, a.body)
		}
	})
	t.Run("ok/revoked: renew now", func(t *testing.T) {
		rv := map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(leaf.Raw), "reason": 1}
		if a := c.post(c.url("revokeCert"), rv); a.status != 200 {
			t.Fatalf("revoke: %d %s", a.status, a.body)
		}
		status, _, ri, body := getRenewalInfo(t, "default", id)
		now := srv.clock.Now()
		if status != 200 || !ri.SuggestedWindow.End.Before(now) || !ri.SuggestedWindow.Start.Before(ri.SuggestedWindow.End) {
			t.Fatalf("%d %s at %s, want a window in the past", status, body, now)
		}
		// The explanation is the certificate's public record.
		resp, err := srv.client.Get(ri.ExplanationURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rec struct{ Status, Reason string }
		if json.NewDecoder(resp.Body).Decode(&rec); rec.Status != "revoked" || rec.Reason != "keyCompromise" {
			t.Fatalf("explanationURL %q: %d %+v", ri.ExplanationURL, resp.StatusCode, rec)
		}
	})
}

// TestNewOrderReplaces: RFC 9773 §5's checks of "replaces", by hand.
func TestNewOrderReplaces(t *testing.T) {
	c, leaf, id := ariClient(t, "old.internal")
	order := func(c *rawClient, replaces string, names ...string) answer {
		var ids []map[string]string
		for _, n := range names {
			ids = append(ids, map[string]string{"type": "dns", "value": n})
		}
		return c.post(c.url("newOrder"), map[string]any{"identifiers": ids, "replaces": replaces})
	}
	other := newRaw(t, "default")
	other.register()
	aki, _, _ := strings.Cut(id, ".")
	for _, tc := range []struct {
		name     string
		c        *rawClient
		replaces string
		names    []string
		typ      string
		detail   string
	}{
		{"fail/not an identifier", c, "old-internal", []string{"old.internal"}, "malformed", "replaces: a certificate identifier is"},
		{"fail/another account's certificate", other, id, []string{"old.internal"}, "unauthorized", "was not issued to this account"},
		{"fail/no identifier shared", c, id, []string{"new.internal"}, "malformed", "shares none of its identifiers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if typ, d := order(tc.c, tc.replaces, tc.names...).problem(t); typ != tc.typ || !strings.Contains(d, tc.detail) {
				t.Fatalf("%s %s, want %s saying %q", typ, d, tc.typ, tc.detail)
			}
		})
	}
	var o struct {
		orderObj
		Replaces string `json:"replaces"`
	}
	// A certificate this directory has no record of (a restored store, a
	// pruned record): the order is taken and echoes "replaces", but
	// replaces nothing (see TestLegoARIUnknownCertificate).
	unknown := order(c, aki+".AQ", "old.internal")
	if unknown.json(t, &o); unknown.status != 201 || o.Replaces != aki+".AQ" {
		t.Fatalf("ok/a certificate with no record: %d %s", unknown.status, unknown.body)
	}
	a := order(c, id, "old.internal", "more.internal")
	a.json(t, &o)
	if a.status != 201 || o.Replaces != id {
		t.Fatalf("ok/order that replaces (and adds a name): %d %s", a.status, a.body)
	}
	if c.post(a.header.Get("Location"), nil).json(t, &o); o.Replaces != id {
		t.Fatalf("ok/the order keeps echoing replaces: %+v", o)
	}
	// One order replaces a certificate at a time (RFC 9773 §5): a second
	// is refused while the first is not invalid, and accepted once it is.
	second := order(c, id, "old.internal")
	if typ, d := second.problem(t); second.status != http.StatusConflict || typ != "alreadyReplaced" ||
		!strings.Contains(d, "already has a replacement order, "+a.header.Get("Location")+" (pending)") {
		t.Fatalf("fail/second replacement while the first is pending: %d %s", second.status, second.body)
	}
	var az struct{ Status string }
	if c.post(o.Authorizations[0], map[string]any{"status": "deactivated"}).json(t, &az); az.Status != "deactivated" {
		t.Fatalf("deactivate the first order's authorization: %+v", az)
	}
	second = order(c, id, "old.internal")
	if second.status != 201 {
		t.Fatalf("ok/second replacement once the first is invalid: %d %s", second.status, second.body)
	}
	newSerial := replace(t, c, second, "old.internal", leaf)
	a = order(c, id, "old.internal")
	if typ, d := a.problem(t); a.status != http.StatusConflict || typ != "alreadyReplaced" || !strings.Contains(d, "already replaced by "+newSerial) {
		t.Fatalf("fail/replaced twice: %d %s", a.status, a.body)
	}
	// A revoked certificate is what ARI asks to replace at once; its
	// replacement is linked like any other (ACME's, unlike /v1/renew's,
	// is a new validation, not a renewal by the revoked certificate).
	// (Not a subtest: c fails the test it was made in.)
	gone := c.issueRaw("gone.internal")
	goneID, _ := legoapi.MakeARICertID(gone)
	if _, _, err := srv.run.CA.Revoke(context.Background(), gone.SerialNumber.Text(16), "superseded"); err != nil {
		t.Fatal(err)
	}
	replace(t, c, order(c, goneID, "gone.internal"), "gone.internal", gone)
}

// replace validates and finalizes the answer to a newOrder that replaces
// old, checks that both records name each other, and returns the new
// serial.
func replace(t *testing.T, c *rawClient, a answer, name string, old *x509.Certificate) string {
	t.Helper()
	var o orderObj
	if a.json(t, &o); a.status != 201 {
		t.Fatalf("newOrder replacing %s: %d %s", name, a.status, a.body)
	}
	c.validate(o)
	o = c.finalize(a.header.Get("Location"), o, name)
	newSerial := o.Certificate[strings.LastIndex(o.Certificate, "/")+1:]
	st := srv.run.Store
	oldRec, err := st.GetCertificate(context.Background(), old.SerialNumber.Text(16))
	if err != nil || oldRec.ReplacedBy != newSerial {
		t.Fatalf("the old record names its replacement %s: %+v %v", newSerial, oldRec, err)
	}
	if newRec, err := st.GetCertificate(context.Background(), newSerial); err != nil || newRec.Replaces != oldRec.Serial || newRec.Via != "acme" {
		t.Fatalf("the new record names what it replaces: %+v %v", newRec, err)
	}
	return newSerial
}

// TestLegoARIUnknownCertificate: lego renews, with "replaces", a
// certificate this CA signed and holds no record of (issued before the
// store was restored from a backup, or pruned), and then the same one
// adopted as ACME's (a record, but no account): each order is taken and
// the new certificate replaces nothing, where a refusal would have
// stopped lego (it orders again without "replaces" only after
// alreadyReplaced).
func TestLegoARIUnknownCertificate(t *testing.T) {
	ctx := context.Background()
	tc := testutil.CA(t, "ec-p256")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := srv.clock.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(0x5eed), DNSNames: []string{"b.internal"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(23 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, tc.Intermediate, key.Public(), tc.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.run.Store.GetCertificate(ctx, "5eed"); err == nil {
		t.Fatal("the store holds the certificate")
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	res := certificate.Resource{Domains: []string{"b.internal"}, KeyType: certcrypto.EC256, Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	c, _ := newLego(t, "default")
	renewed, err := c.Certificate.Renew(ctx, res, &certificate.RenewOptions{UseARICertID: true})
	if err != nil {
		t.Fatalf("renew with replaces naming a certificate with no record: %v", err)
	}
	if rec, err := srv.run.Store.GetCertificate(ctx, leafOf(t, renewed).SerialNumber.Text(16)); err != nil || rec.Replaces != "" || rec.Via != "acme" {
		t.Fatalf("the renewal: %+v %v, want a record that replaces nothing", rec, err)
	}
	// Adopted as ACME's (pkid cert adopt --acme), it has a record but no
	// account: lego renews it the same way.
	if _, err := srv.run.CA.Adopt(ctx, der, "default", "test", true); err != nil {
		t.Fatal(err)
	}
	again, err := c.Certificate.Renew(ctx, res, &certificate.RenewOptions{UseARICertID: true})
	if err != nil {
		t.Fatalf("renew an adopted certificate with replaces: %v", err)
	}
	if rec, err := srv.run.Store.GetCertificate(ctx, leafOf(t, again).SerialNumber.Text(16)); err != nil || rec.Replaces != "" {
		t.Fatalf("the renewal of the adopted one: %+v %v, want a record that replaces nothing", rec, err)
	}
}

// TestLegoARI: lego asks pkid when to renew, renews with "replaces", and
// when it renews the same certificate again gets alreadyReplaced and
// orders without it (RFC 9773 §5), as its own code expects.
func TestLegoARI(t *testing.T) {
	ctx := context.Background()
	c, _ := newLego(t, "default")
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"c.internal"}, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain: %v", err)
	}
	leaf := leafOf(t, res)
	ri, err := c.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatalf("renewalInfo: %v", err)
	}
	now := srv.clock.Now()
	if at := ri.ShouldRenewAt(now, time.Hour); at != nil {
		t.Fatalf("lego would renew a fresh 24 h certificate at %s", at)
	}
	if at := ri.ShouldRenewAt(now, 24*time.Hour); at == nil || at.Before(leaf.NotBefore.Add(13*time.Hour)) || at.After(leaf.NotBefore.Add(16*time.Hour)) {
		t.Fatalf("lego's renewal time %v, want within pkid's window (hours 13.6 to 16)", at)
	}
	if ri.RetryAfter != time.Hour {
		t.Fatalf("Retry-After %s, want 1h", ri.RetryAfter)
	}
	renewed, err := c.Certificate.Renew(ctx, *res, &certificate.RenewOptions{UseARICertID: true})
	if err != nil {
		t.Fatalf("renew with replaces: %v", err)
	}
	st := srv.run.Store
	newLeaf := leafOf(t, renewed)
	if rec, err := st.GetCertificate(ctx, newLeaf.SerialNumber.Text(16)); err != nil || rec.Replaces != leaf.SerialNumber.Text(16) {
		t.Fatalf("the renewal does not name what it replaced: %+v %v", rec, err)
	}
	again, err := c.Certificate.Renew(ctx, *res, &certificate.RenewOptions{UseARICertID: true})
	if err != nil {
		t.Fatalf("lego's retry without replaces after alreadyReplaced: %v", err)
	}
	third, err := st.GetCertificate(ctx, leafOf(t, again).SerialNumber.Text(16))
	if err != nil || third.Replaces != "" {
		t.Fatalf("the retried order should replace nothing: %+v %v", third, err)
	}
	if old, _ := st.GetCertificate(ctx, leaf.SerialNumber.Text(16)); old.ReplacedBy != newLeaf.SerialNumber.Text(16) {
		t.Fatalf("replaced_by %q, want the first renewal", old.ReplacedBy)
	}
	// A revoked certificate: lego renews at once.
	if err := c.Certificate.RevokeWithReason(ctx, renewed.Certificate, new(uint(1))); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	ri, err = c.Certificate.GetRenewalInfo(ctx, newLeaf)
	if err != nil {
		t.Fatal(err)
	}
	if at := ri.ShouldRenewAt(now, 0); at == nil || !at.Equal(now.UTC()) {
		t.Fatalf("lego's renewal time for a revoked certificate %v, want now", at)
	}
}
