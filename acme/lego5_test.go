package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"pkid/internal/testutil"
)

// dnsProvider publishes lego's TXT records in the test DNS server; a
// wildcard and its apex share one name, so values are added and removed
// one by one.
type dnsProvider struct{ d *testDNS }

func (p dnsProvider) Present(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	p.d.add(info.EffectiveFQDN, info.Value)
	return nil
}

func (p dnsProvider) CleanUp(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	p.d.remove(info.EffectiveFQDN, info.Value)
	return nil
}

func (p dnsProvider) Timeout() (time.Duration, time.Duration) {
	return 10 * time.Second, 50 * time.Millisecond
}

// legoOnly returns a registered lego client with exactly one solver.
func legoOnly(t *testing.T, role string, typ challenge.Type) *lego.Client {
	t.Helper()
	c, _ := newLego(t, role)
	c.Challenge.Remove(challenge.HTTP01)
	switch typ {
	case challenge.DNS01:
		dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{srv.dns.addr}, Timeout: 2 * time.Second}))
		if err := c.Challenge.SetDNS01Provider(dnsProvider{srv.dns}, dns01.PropagationWait(0, true)); err != nil {
			t.Fatal(err)
		}
	case challenge.TLSALPN01:
		if err := c.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(srv.tlsPort))); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func obtain(t *testing.T, c *lego.Client, names ...string) *certificate.Resource {
	t.Helper()
	res, err := c.Certificate.Obtain(context.Background(), certificate.ObtainRequest{Domains: names, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain %v: %v", names, err)
	}
	leaf := leafOf(t, res)
	testutil.LintCertificate(t, leaf.Raw)
	return res
}

func TestLegoDNS01WildcardAndApex(t *testing.T) {
	c := legoOnly(t, "wild", challenge.DNS01)
	res := obtain(t, c, "*.w.wild.internal", "w.wild.internal")
	leaf := leafOf(t, res)
	if len(leaf.DNSNames) != 2 || (leaf.DNSNames[0] != "*.w.wild.internal" && leaf.DNSNames[1] != "*.w.wild.internal") {
		t.Fatalf("names %v", leaf.DNSNames)
	}
}

func TestLegoTLSALPN01(t *testing.T) {
	c := legoOnly(t, "wild", challenge.TLSALPN01)
	obtain(t, c, "alpn.wild.internal")
}

func TestLegoIPIdentifiers(t *testing.T) {
	t.Run("http-01", func(t *testing.T) {
		c, _ := newLego(t, "wild")
		leaf := leafOf(t, obtain(t, c, "127.0.0.1"))
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal([]byte{127, 0, 0, 1}) || len(leaf.DNSNames) != 0 {
			t.Fatalf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
		}
	})
	t.Run("tls-alpn-01", func(t *testing.T) {
		c := legoOnly(t, "wild", challenge.TLSALPN01)
		obtain(t, c, "127.0.0.1")
	})
}

// TestLegoProfiles: lego sends a profile whatever the directory offers; a
// profile other than the role's is refused, not silently ignored.
func TestLegoProfiles(t *testing.T) {
	c, _ := newLego(t, "default")
	_, err := c.Certificate.Obtain(context.Background(), certificate.ObtainRequest{Domains: []string{"a.internal"}, KeyType: certcrypto.EC256, Profile: "shortlived"})
	if err == nil || !strings.Contains(err.Error(), "invalidProfile") {
		t.Fatalf("fail/profile shortlived: %v", err)
	}
	res, err := c.Certificate.Obtain(context.Background(), certificate.ObtainRequest{Domains: []string{"a.internal"}, KeyType: certcrypto.EC256, Profile: "default"})
	if err != nil {
		t.Fatalf("ok/profile default: %v", err)
	}
	testutil.LintCertificate(t, leafOf(t, res).Raw)
}

func TestLegoKeyRollover(t *testing.T) {
	c, u := newLego(t, "default")
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := c.Registration.KeyRollover(context.Background(), newKey); err != nil {
		t.Fatalf("rollover: %v", err)
	}
	u.key = newKey
	cfg := lego.NewConfig(u)
	cfg.CADirURL = srv.dirURL("default")
	cfg.HTTPClient = &http.Client{Transport: srv.client.Transport}
	c2, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Registration.QueryRegistration(context.Background()); err != nil {
		t.Fatalf("the rolled-over key does not reach the account: %v", err)
	}
}

func TestLegoEAB(t *testing.T) {
	ctx := context.Background()
	kid, hmac, err := srv.eab.Create(ctx, "eab")
	if err != nil {
		t.Fatal(err)
	}
	register := func(kid, hmac string) error {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		u := &legoUser{key: key}
		cfg := lego.NewConfig(u)
		cfg.CADirURL = srv.dirURL("eab")
		cfg.HTTPClient = &http.Client{Transport: srv.client.Transport}
		c, err := lego.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if kid == "" {
			_, err = c.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		} else {
			_, err = c.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: hmac})
		}
		return err
	}
	if err := register("", ""); err == nil || !strings.Contains(err.Error(), "externalAccountRequired") {
		t.Fatalf("fail/no binding: %v", err)
	}
	_, other, _ := srv.eab.Create(ctx, "eab")
	if err := register(kid, other); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("fail/wrong HMAC: %v", err)
	}
	if err := register(kid, hmac); err != nil {
		t.Fatalf("ok/valid binding: %v", err)
	}
	if err := register(kid, hmac); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("fail/binding used twice: %v", err)
	}
	defKid, defHMAC, _ := srv.eab.Create(ctx, "default")
	if err := register(defKid, defHMAC); err == nil || !strings.Contains(err.Error(), "unknown external account binding") {
		t.Fatalf("fail/binding of another role: %v", err)
	}
}
