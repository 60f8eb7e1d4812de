package acme_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"pkid/internal/testutil"
)

type legoUser struct {
	key crypto.Signer
	reg *legoacme.ExtendedAccount
}

func (u *legoUser) GetEmail() string                           { return "" }
func (u *legoUser) GetRegistration() *legoacme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer               { return u.key }

// newLego returns a registered lego client for role, validating http-01 on
// the test port.
func newLego(t *testing.T, role string) (*lego.Client, *legoUser) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := &legoUser{key: key}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = srv.dirURL(role)
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: srv.client.Transport}
	cfg.Certificate.Timeout = 6 * time.Second
	c, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(srv.httpPort))); err != nil {
		t.Fatal(err)
	}
	reg, err := c.Registration.Register(context.Background(), registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatal(err)
	}
	u.reg = reg
	return c, u
}

func leafOf(t *testing.T, res *certificate.Resource) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(res.Certificate)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLego: account, http-01 order, renewal, revocation by account key,
// account deactivation, with lego as the client.
func TestLego(t *testing.T) {
	ctx := context.Background()
	c, _ := newLego(t, "default")
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"a.internal", "b.internal"}, KeyType: certcrypto.EC256, Bundle: true})
	if err != nil {
		t.Fatalf("obtain: %v", err)
	}
	leaf := leafOf(t, res)
	if len(leaf.DNSNames) != 2 {
		t.Fatalf("names %v", leaf.DNSNames)
	}
	testutil.LintCertificate(t, leaf.Raw)
	roots := x509.NewCertPool()
	roots.AddCert(srv.run.CA.Root())
	inter := x509.NewCertPool()
	inter.AddCert(srv.run.CA.Intermediate())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "b.internal", CurrentTime: srv.clock.Now()}); err != nil {
		t.Fatal(err)
	}

	renewed, err := c.Certificate.Renew(ctx, *res, &certificate.RenewOptions{KeyType: certcrypto.EC256, Bundle: true})
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if leafOf(t, renewed).SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("renewal returned the same certificate")
	}

	reason := uint(legoacme.CRLReasonSuperseded)
	if err := c.Certificate.RevokeWithReason(ctx, res.Certificate, &reason); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	err = c.Certificate.RevokeWithReason(ctx, res.Certificate, &reason)
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:alreadyRevoked" {
		t.Fatalf("second revoke: %v", err)
	}
	rec, err := srv.run.Store.GetCertificate(ctx, strings.ToLower(leaf.SerialNumber.Text(16)))
	if err != nil || rec.Status != "revoked" || rec.Reason != "superseded" {
		t.Fatalf("record %+v %v", rec, err)
	}

	if err := c.Registration.DeleteRegistration(ctx); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if _, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"a.internal"}, KeyType: certcrypto.EC256}); err == nil {
		t.Fatal("a deactivated account obtained a certificate")
	}
}

func TestLegoRefusedOutsideRole(t *testing.T) {
	c, _ := newLego(t, "strict")
	_, err := c.Certificate.Obtain(context.Background(), certificate.ObtainRequest{Domains: []string{"a.internal"}, KeyType: certcrypto.EC256})
	if err == nil || !strings.Contains(err.Error(), "rejectedIdentifier") || !strings.Contains(err.Error(), "subdomains of strict.internal") {
		t.Fatalf("got %v", err)
	}
	if _, err := c.Certificate.Obtain(context.Background(), certificate.ObtainRequest{Domains: []string{"web.strict.internal"}, KeyType: certcrypto.EC256}); err != nil {
		t.Fatalf("ok/inside the role: %v", err)
	}
}
