package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// TestFixedExtensionsSameBytes: a leaf signed with the cached extensions
// carries exactly the extensions crypto/x509 would have encoded from the
// template's fields; templates the cache cannot vouch for are untouched.
func TestFixedExtensionsSameBytes(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Truncate(time.Second)
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Test Intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: []byte{1, 2, 3, 4},
	}
	der, err := x509.CreateCertificate(rand.Reader, interTmpl, interTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(der)
	a := &Authority{d: Deps{Intermediate: inter, Signer: key}, crlURL: "http://ca.internal/crl/01020304", ocspURL: "http://ca.internal/ocsp", aiaURL: "http://ca.internal/v1/ca/intermediate.der"}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	base := func() *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "svc.internal"},
			NotBefore: now, NotAfter: now.Add(time.Hour), DNSNames: []string{"svc.internal"},
			BasicConstraintsValid: true, SubjectKeyId: []byte{9, 9},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
	}
	spiffe, _ := url.Parse("spiffe://internal/svc")
	cases := []struct {
		name   string
		edit   func(*x509.Certificate)
		cached bool
	}{
		{"ok/server", func(*x509.Certificate) {}, true},
		{"ok/pointers", func(c *x509.Certificate) {
			c.CRLDistributionPoints, c.OCSPServer, c.IssuingCertificateURL = []string{a.crlURL}, []string{a.ocspURL}, []string{a.aiaURL}
		}, true},
		{"ok/client-server-rsa", func(c *x509.Certificate) {
			c.KeyUsage |= x509.KeyUsageKeyEncipherment
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
			c.URIs = []*url.URL{spiffe}
		}, true},
		{"ok/no-eku", func(c *x509.Certificate) { c.ExtKeyUsage = nil }, true},
		{"skip/own-extension", func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}}
		}, false},
		{"skip/unknown-eku", func(c *x509.Certificate) { c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 2, 3, 4}} }, false},
		{"skip/other-pointers", func(c *x509.Certificate) { c.CRLDistributionPoints = []string{"http://elsewhere/crl"} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plain, fast := base(), base()
			tc.edit(plain)
			tc.edit(fast)
			if err := a.withFixedExtensions(fast); err != nil {
				t.Fatal(err)
			}
			if cached := len(fast.ExtraExtensions) > 0 && (len(plain.ExtraExtensions) == 0); cached != tc.cached {
				t.Fatalf("cached = %v, want %v", cached, tc.cached)
			}
			want := extensionsOf(t, plain, inter, leafKey, key)
			got := extensionsOf(t, fast, inter, leafKey, key)
			if len(got) != len(want) {
				t.Fatalf("%d extensions, want %d", len(got), len(want))
			}
			for oid, w := range want {
				if g, ok := got[oid]; !ok || g.Critical != w.Critical || !bytes.Equal(g.Value, w.Value) {
					t.Errorf("extension %s: got %+v, want %+v", oid, g, w)
				}
			}
		})
	}
	// A second leaf of a kind reuses the first's encoding.
	c1, c2 := base(), base()
	a.withFixedExtensions(c1)
	a.withFixedExtensions(c2)
	if &c1.ExtraExtensions[0] != &c2.ExtraExtensions[0] {
		t.Error("the same kind of leaf was encoded twice")
	}
}

func extensionsOf(t *testing.T, tmpl, parent *x509.Certificate, leafKey, caKey *ecdsa.PrivateKey) map[string]pkix.Extension {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]pkix.Extension{}
	for _, e := range c.Extensions {
		if _, dup := out[e.Id.String()]; dup {
			t.Fatalf("extension %s twice", e.Id)
		}
		out[e.Id.String()] = e
	}
	return out
}
