package policies

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestOutsideConstraint(t *testing.T) {
	cidr := func(s string) *net.IPNet { _, n, _ := net.ParseCIDR(s); return n }
	issuer := &x509.Certificate{
		PermittedDNSDomains: []string{"internal", ".corp.example"}, ExcludedDNSDomains: []string{"secret.internal"},
		PermittedIPRanges: []*net.IPNet{cidr("10.0.0.0/8"), cidr("fd00::/8")}, ExcludedIPRanges: []*net.IPNet{cidr("10.9.0.0/16")},
		PermittedEmailAddresses: []string{"corp.internal", ".mail.internal", "boss@example.org"},
		PermittedURIDomains:     []string{"internal", ".spiffe.internal"},
	}
	for _, tc := range []struct {
		typ, value string
		want       string // "" or a fragment of the reason
	}{
		{"dns", "internal", ""},
		{"dns", "web.internal", ""},
		{"dns", "*.web.internal", ""},
		{"dns", "WEB.Internal", ""},
		{"dns", "a.corp.example", ""},
		{"dns", "corp.example", "outside"}, // a leading dot: subdomains only
		{"dns", "localhost", "outside the intermediate's name constraints (permitted dns: internal, .corp.example)"},
		{"dns", "notinternal", "outside"}, // a suffix, not a label
		{"dns", "secret.internal", "excluded"},
		{"dns", "x.secret.internal", "excluded"},
		{"ip", "10.1.2.3", ""},
		{"ip", "fd00::1", ""},
		{"ip", "10.9.1.1", "excluded"},
		{"ip", "127.0.0.1", "outside"},
		{"ip", "nope", "not an IP"},
		{"email", "ops@corp.internal", ""},
		{"email", "ops@x.corp.internal", "outside"},
		{"email", "ops@eu.mail.internal", ""},
		{"email", "ops@mail.internal", "outside"},
		{"email", "boss@example.org", ""},
		{"email", "other@example.org", "outside"},
		{"uri", "spiffe://internal/svc", ""},
		{"uri", "spiffe://a.internal/svc", "outside"}, // a URI constraint without a dot is exact
		{"uri", "spiffe://x.spiffe.internal/svc", ""},
		{"uri", "https://10.1.1.1/", "host is empty or an IP"},
		{"nope", "x", "unknown"},
	} {
		t.Run(tc.typ+"/"+tc.value, func(t *testing.T) {
			got := OutsideConstraint(issuer, tc.typ, tc.value)
			if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			// crypto/x509's chain verification is an oracle one way: what
			// pkid would sign, it accepts. (It is laxer than RFC 5280 and
			// OpenSSL in two cases, which pkid refuses: a mail host
			// constraint matches subdomains, and a URI host one too.)
			if verr, ok := verifyUnder(t, issuer, tc.typ, tc.value); ok && got == "" && verr != nil {
				t.Fatalf("pkid would sign it, but crypto/x509 refuses the chain: %v", verr)
			}
		})
	}
	// Without constraints, nothing is outside them; with DNS constraints
	// only, IPs are not constrained (RFC 5280: per name type).
	leaf := &x509.Certificate{DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, URIs: []*url.URL{{Scheme: "spiffe", Host: "x"}}}
	if got := OutsideConstraints(&x509.Certificate{}, leaf); got != "" {
		t.Fatalf("no constraints: %q", got)
	}
	dnsOnly := &x509.Certificate{PermittedDNSDomains: []string{"internal"}}
	if got := OutsideConstraints(dnsOnly, &x509.Certificate{DNSNames: []string{"a.internal"}, IPAddresses: leaf.IPAddresses}); got != "" {
		t.Fatalf("DNS constraints, an IP: %q", got)
	}
	if got := OutsideConstraints(dnsOnly, leaf); !strings.Contains(got, "dns localhost") {
		t.Fatalf("DNS constraints, localhost: %q", got)
	}
}

// verifyUnder signs a leaf holding one name under a CA carrying issuer's
// constraints and verifies it with crypto/x509; ok is false for a name
// that cannot go into a certificate.
func verifyUnder(t *testing.T, issuer *x509.Certificate, typ, value string) (error, bool) {
	t.Helper()
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	switch typ {
	case "dns":
		leaf.DNSNames = []string{value}
	case "ip":
		if leaf.IPAddresses = []net.IP{net.ParseIP(value)}; leaf.IPAddresses[0] == nil {
			return nil, false
		}
	case "email":
		leaf.EmailAddresses = []string{value}
	case "uri":
		u, err := url.Parse(value)
		if err != nil {
			return nil, false
		}
		leaf.URIs = []*url.URL{u}
	default:
		return nil, false
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	ca := *issuer
	ca.SerialNumber, ca.Subject = big.NewInt(1), pkix.Name{CommonName: "constrained"}
	ca.NotBefore, ca.NotAfter = leaf.NotBefore, leaf.NotAfter
	ca.IsCA, ca.BasicConstraintsValid, ca.KeyUsage = true, true, x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, &ca, &ca, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := x509.ParseCertificate(leafDER)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	_, err = parsed.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err, true
}
