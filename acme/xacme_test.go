package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"pkid/internal/testutil"
)

// newXACME returns a registered golang.org/x/crypto/acme client for role:
// the ACME client cert-manager is built on, used unchanged.
func newXACME(t *testing.T, role string) *xacme.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &xacme.Client{Key: key, DirectoryURL: srv.dirURL(role), HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: srv.client.Transport}}
	if _, err := c.Register(context.Background(), &xacme.Account{}, xacme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	return c
}

// solveHTTP01 answers every authorization of o over http-01 the way
// cert-manager's solver does, from a responder on the CA's http-01 port for
// as long as it takes.
func solveHTTP01(t *testing.T, ctx context.Context, c *xacme.Client, o *xacme.Order) {
	t.Helper()
	publish, stop := testutil.HTTP01Responder(t, "127.0.0.1:"+strconv.Itoa(srv.httpPort))
	defer stop()
	testutil.SolveHTTP01(t, ctx, c, o, publish)
}

// TestXCryptoACME runs cert-manager's client library against pkid: order,
// http-01, finalize with the chain, download again, account lookup, key
// rollover, revocation (by account and by certificate key), refusal of a
// name outside the role, and deactivation.
func TestXCryptoACME(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newXACME(t, "default")

	issue := func(names ...string) ([][]byte, string, *ecdsa.PrivateKey) {
		t.Helper()
		o, err := c.AuthorizeOrder(ctx, xacme.DomainIDs(names...))
		if err != nil {
			t.Fatalf("order: %v", err)
		}
		solveHTTP01(t, ctx, c, o)
		if o, err = c.WaitOrder(ctx, o.URI); err != nil || o.Status != xacme.StatusReady {
			t.Fatalf("wait order: %+v %v", o, err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
		if err != nil {
			t.Fatal(err)
		}
		der, certURL, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
		if err != nil {
			t.Fatalf("finalize: %v", err)
		}
		return der, certURL, key
	}

	der, certURL, _ := issue("a.internal", "c.internal")
	if len(der) != 2 {
		t.Fatalf("bundle of %d certificates, want leaf and intermediate", len(der))
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	testutil.LintCertificate(t, leaf.Raw)
	inter, err := x509.ParseCertificate(der[1])
	if err != nil || !inter.Equal(srv.run.CA.Intermediate()) {
		t.Fatalf("second certificate is not the intermediate: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(srv.run.CA.Root())
	pool := x509.NewCertPool()
	pool.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, DNSName: "c.internal", CurrentTime: srv.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	again, err := c.FetchCert(ctx, certURL, false)
	if err != nil || len(again) != 1 || !leaf.Equal(mustParse(t, again[0])) {
		t.Fatalf("download again: %d certificates, %v", len(again), err)
	}
	if acct, err := c.GetReg(ctx, ""); err != nil || acct.Status != xacme.StatusValid {
		t.Fatalf("account: %+v %v", acct, err)
	}

	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := c.AccountKeyRollover(ctx, newKey); err != nil {
		t.Fatalf("key rollover: %v", err)
	}
	// The client now signs with the new key; revoking through the account
	// proves the server took it.
	if err := c.RevokeCert(ctx, nil, der[0], xacme.CRLReasonSuperseded); err != nil {
		t.Fatalf("revoke by account: %v", err)
	}
	rec, err := srv.run.Store.GetCertificate(ctx, strings.ToLower(leaf.SerialNumber.Text(16)))
	if err != nil || rec.Status != "revoked" || rec.Reason != "superseded" {
		t.Fatalf("record %+v %v", rec, err)
	}

	der2, _, certKey := issue("b.internal")
	if err := (&xacme.Client{Key: certKey, DirectoryURL: c.DirectoryURL, HTTPClient: c.HTTPClient}).RevokeCert(ctx, certKey, der2[0], xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("revoke by certificate key: %v", err)
	}

	_, err = c.AuthorizeOrder(ctx, xacme.DomainIDs("evil.com"))
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:rejectedIdentifier" || !strings.Contains(ae.Detail, "evil.com") {
		t.Fatalf("order outside the role: %v", err)
	}

	if err := c.DeactivateReg(ctx); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if _, err := c.AuthorizeOrder(ctx, xacme.DomainIDs("a.internal")); !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("order by a deactivated account: %v", err)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestXCryptoEAB: cert-manager's client registers with an external
// account binding (it decodes the base64url HMAC key and signs the
// binding HS256, as x/crypto/acme does), and without one is refused.
func TestXCryptoEAB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kid, encoded, err := srv.eab.Create(ctx, "eab")
	if err != nil {
		t.Fatal(err)
	}
	hmacKey, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatalf("the HMAC key %q is not base64url: %v", encoded, err)
	}
	register := func(eab *xacme.ExternalAccountBinding) error {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c := &xacme.Client{Key: key, DirectoryURL: srv.dirURL("eab"), HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: srv.client.Transport}}
		_, err := c.Register(ctx, &xacme.Account{ExternalAccountBinding: eab}, xacme.AcceptTOS)
		return err
	}
	var ae *xacme.Error
	if err := register(nil); !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:externalAccountRequired" {
		t.Fatalf("fail/no binding: %v", err)
	}
	if err := register(&xacme.ExternalAccountBinding{KID: kid, Key: hmacKey}); err != nil {
		t.Fatalf("ok/binding: %v", err)
	}
}
