package policies

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func testRole() *Role {
	return &Role{
		Name:               "default",
		AllowedDomains:     []string{"internal", "localhost"},
		AllowSubdomains:    true,
		AllowedIPRanges:    []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		AllowedURIPatterns: []string{"spiffe://internal/*"},
		DefaultTTL:         24 * time.Hour,
		MaxTTL:             168 * time.Hour,
		KeyTypes:           []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048"},
		ExtKeyUsage:        []string{"server_auth", "client_auth"},
	}
}

var p256 = func() crypto.PublicKey {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k.Public()
}()

func rsaPub(bits int) crypto.PublicKey {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.Add(n, big.NewInt(1))
	return &rsa.PublicKey{N: n, E: 65537}
}

func uris(s ...string) []*url.URL {
	var out []*url.URL
	for _, x := range s {
		u, err := url.Parse(x)
		if err != nil {
			panic(err)
		}
		out = append(out, u)
	}
	return out
}

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func TestEvaluate(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	wild := testRole()
	wild.AllowWildcards = true
	bare := testRole()
	bare.AllowBareDomains = true
	bare.AllowSubdomains = false
	mail := testRole()
	mail.AllowedEmailDomains = []string{"corp.internal"}
	bareAndSub := testRole()
	bareAndSub.AllowBareDomains = true
	neither := testRole()
	neither.AllowSubdomains = false
	noURIs := testRole()
	noURIs.AllowedURIPatterns = nil

	type tc struct {
		name    string
		role    *Role
		req     Request
		wantErr string // substring of the rejection, "" = allowed
		check   func(t *testing.T, d *Decision)
	}
	cases := []tc{
		{name: "ok/subdomain", req: Request{DNSNames: []string{"svc.internal"}}},
		{name: "ok/deep subdomain", req: Request{DNSNames: []string{"a.b.c.internal"}}},
		{name: "ok/upper case normalized", req: Request{DNSNames: []string{"SVC.Internal"}}, check: func(t *testing.T, d *Decision) {
			if d.DNSNames[0] != "svc.internal" {
				t.Errorf("got %v", d.DNSNames)
			}
		}},
		{name: "ok/trailing dot normalized", req: Request{DNSNames: []string{"svc.internal."}}, check: func(t *testing.T, d *Decision) {
			if d.DNSNames[0] != "svc.internal" {
				t.Errorf("got %v", d.DNSNames)
			}
		}},
		{name: "ok/cn only becomes SAN", req: Request{CommonName: "web.internal"}, check: func(t *testing.T, d *Decision) {
			if len(d.DNSNames) != 1 || d.DNSNames[0] != "web.internal" || d.CommonName != "web.internal" {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "ok/cn IP only becomes IP SAN", req: Request{CommonName: "127.0.0.1"}, check: func(t *testing.T, d *Decision) {
			if len(d.IPAddresses) != 1 {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "ok/100 SANs", req: Request{DNSNames: hosts(99, "internal"), IPAddresses: ips("127.0.0.1")}, check: func(t *testing.T, d *Decision) {
			if n := len(d.Names()); n != 100 {
				t.Errorf("%d names", n)
			}
		}},
		{name: "ok/cn among SANs", req: Request{CommonName: "a.internal", DNSNames: []string{"a.internal", "b.internal"}}},
		// The subject CN takes the exact form of the SAN it names.
		{name: "ok/cn only, upper case and trailing dot", req: Request{CommonName: "Web.Internal."}, check: cnIs("web.internal")},
		{name: "ok/cn among SANs, other case", req: Request{CommonName: "B.INTERNAL", DNSNames: []string{"a.internal", "b.internal."}}, check: cnIs("b.internal")},
		{name: "ok/cn ipv6 only, long form", req: Request{CommonName: "FD12:0:0::1"}, check: cnIs("fd12::1")},
		{name: "ok/cn ipv6 among SANs", req: Request{CommonName: "fd12:0::1", IPAddresses: ips("fd12::1")}, check: cnIs("fd12::1")},
		{name: "ok/long cn left out of subject", req: Request{CommonName: strings.Repeat("a", 60) + ".internal"}, check: func(t *testing.T, d *Decision) {
			if d.CommonName != "" || len(d.DNSNames) != 1 {
				t.Errorf("got %+v", d)
			}
		}},
		{name: "ok/ip in range", req: Request{IPAddresses: ips("127.0.0.5")}},
		{name: "ok/ipv6 in range", req: Request{IPAddresses: ips("fd12::1")}},
		{name: "ok/spiffe uri", req: Request{URIs: uris("spiffe://internal/ns/prod/sa/web")}},
		{name: "ok/a-label", req: Request{DNSNames: []string{"xn--bcher-kva.internal"}}},
		{name: "ok/wildcard when allowed", role: wild, req: Request{DNSNames: []string{"*.svc.internal"}}},
		{name: "ok/bare domain when allowed", role: bare, req: Request{DNSNames: []string{"internal"}}},
		{name: "ok/email where allowed", role: mail, req: Request{Emails: []string{"ops@corp.internal"}}},
		{name: "ok/default ttl", req: Request{DNSNames: []string{"a.internal"}}, check: func(t *testing.T, d *Decision) {
			if d.TTL != 24*time.Hour {
				t.Errorf("ttl %s", d.TTL)
			}
		}},
		{name: "ok/ttl at max", req: Request{DNSNames: []string{"a.internal"}, TTL: 168 * time.Hour}},
		{name: "ok/ed25519", req: Request{DNSNames: []string{"a.internal"}, PublicKey: edPub}},
		{name: "ok/p384", req: Request{DNSNames: []string{"a.internal"}, PublicKey: p384.Public()}},
		{name: "ok/rsa-2048 gets keyEncipherment", req: Request{DNSNames: []string{"a.internal"}, PublicKey: rsaPub(2048)}, check: func(t *testing.T, d *Decision) {
			if d.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
				t.Error("no keyEncipherment")
			}
		}},
		{name: "ok/duplicates collapse", req: Request{DNSNames: []string{"a.internal", "A.internal."}}, check: func(t *testing.T, d *Decision) {
			if len(d.DNSNames) != 1 {
				t.Errorf("got %v", d.DNSNames)
			}
		}},
		{name: "ok/eku from role only", req: Request{DNSNames: []string{"a.internal"}}, check: func(t *testing.T, d *Decision) {
			if len(d.ExtKeyUsage) != 2 || d.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("got %v", d.ExtKeyUsage)
			}
		}},

		{name: "fail/outside domain", req: Request{DNSNames: []string{"example.com"}}, wantErr: "subdomains of internal"},
		{name: "fail/IP address as a DNS name", req: Request{DNSNames: []string{"127.0.0.1"}}, wantErr: "an IP address written as a DNS name; request it as an IP address"},
		{name: "fail/suffix attack", req: Request{DNSNames: []string{"evil.internal.attacker.com"}}, wantErr: "not within"},
		{name: "fail/lookalike suffix", req: Request{DNSNames: []string{"evilinternal"}}, wantErr: "not within"},
		{name: "fail/bare domain with trailing dot", req: Request{DNSNames: []string{"internal."}}, wantErr: "not within"},
		{name: "fail/bare domain upper", req: Request{DNSNames: []string{"INTERNAL"}}, wantErr: "not within"},
		{name: "fail/wildcard off", req: Request{DNSNames: []string{"*.internal"}}, wantErr: "wildcard names are not allowed"},
		{name: "fail/double wildcard", role: wild, req: Request{DNSNames: []string{"*.*.internal"}}, wantErr: "whole leftmost label"},
		{name: "fail/partial wildcard", role: wild, req: Request{DNSNames: []string{"a*.internal"}}, wantErr: "whole leftmost label"},
		{name: "fail/inner wildcard", role: wild, req: Request{DNSNames: []string{"a.*.internal"}}, wantErr: "whole leftmost label"},
		{name: "fail/empty label", req: Request{DNSNames: []string{"a..internal"}}, wantErr: "empty label"},
		{name: "fail/leading dot", req: Request{DNSNames: []string{".internal"}}, wantErr: "empty label"},
		{name: "fail/space", req: Request{DNSNames: []string{"a b.internal"}}, wantErr: "only letters"},
		{name: "fail/underscore", req: Request{DNSNames: []string{"a_b.internal"}}, wantErr: "only letters"},
		{name: "fail/unicode lookalike", req: Request{DNSNames: []string{"аpple.internal"}}, wantErr: "A-labels"},
		{name: "fail/bad a-label", req: Request{DNSNames: []string{"xn--zz.internal"}}, wantErr: "not a valid A-label"},
		{name: "fail/reserved hyphens", req: Request{DNSNames: []string{"ab--cd.internal"}}, wantErr: "reserved"},
		{name: "fail/leading hyphen", req: Request{DNSNames: []string{"-a.internal"}}, wantErr: "starts or ends"},
		{name: "fail/long label", req: Request{DNSNames: []string{strings.Repeat("a", 64) + ".internal"}}, wantErr: "63"},
		{name: "fail/empty name", req: Request{DNSNames: []string{""}}, wantErr: "empty name"},
		{name: "fail/ip just outside", req: Request{IPAddresses: ips("128.0.0.0")}, wantErr: "127.0.0.0/8"},
		{name: "fail/ip below", req: Request{IPAddresses: ips("126.255.255.255")}, wantErr: "outside"},
		{name: "fail/ipv4-mapped ipv6", req: Request{IPAddresses: ips("::ffff:127.0.0.1")}, wantErr: "IPv4-mapped"},
		{name: "fail/ipv6 outside", req: Request{IPAddresses: ips("fe80::1")}, wantErr: "outside"},
		{name: "fail/uri other trust domain", req: Request{URIs: uris("spiffe://evil/ns/x")}, wantErr: "does not match"},
		{name: "fail/uri trust domain only", req: Request{URIs: uris("spiffe://internal/")}, wantErr: "does not match"},
		{name: "fail/uri dotdot", req: Request{URIs: uris("spiffe://internal/a/../b")}, wantErr: "clean form"},
		{name: "fail/uri query", req: Request{URIs: uris("spiffe://internal/a?x=1")}, wantErr: "query"},
		{name: "fail/uri percent-encoded slash", req: Request{URIs: uris("spiffe://internal/ns%2Fprod/x")}, wantErr: "percent-encoded"},
		{name: "fail/uri percent-encoded letter", req: Request{URIs: uris("spiffe://internal/%61")}, wantErr: "percent-encoded"},
		{name: "fail/uri upper-case host", req: Request{URIs: uris("spiffe://INTERNAL/ns/x")}, wantErr: "lower case"},
		{name: "ok/spiffe path of letters, digits, '.', '-', '_'", req: Request{URIs: uris("spiffe://internal/A_b-c.d/9")}},
		{name: "fail/spiffe path with '*'", req: Request{URIs: uris("spiffe://internal/a*b")}, wantErr: `path segment "a*b": only letters, digits`},
		{name: "fail/spiffe path with '~'", req: Request{URIs: uris("spiffe://internal/~x")}, wantErr: "SPIFFE ID, spec"},
		{name: "fail/spiffe port", req: Request{URIs: uris("spiffe://internal:8443/x")}, wantErr: "without a port"},
		{name: "fail/two SPIFFE IDs", req: Request{URIs: uris("spiffe://internal/a", "spiffe://internal/b")}, wantErr: "an X.509-SVID carries exactly one URI SAN"},
		{name: "ok/email domain normalized, mailbox kept", role: mail, req: Request{CommonName: "Ops@Corp.Internal.", Emails: []string{"Ops@Corp.Internal."}}, check: func(t *testing.T, d *Decision) {
			if len(d.Emails) != 1 || d.Emails[0] != "Ops@corp.internal" || d.CommonName != "Ops@corp.internal" {
				t.Errorf("emails %q, CN %q", d.Emails, d.CommonName)
			}
		}},
		{name: "fail/email not allowed", req: Request{Emails: []string{"a@internal"}}, wantErr: "no email SANs"},
		{name: "fail/email other domain", role: mail, req: Request{Emails: []string{"a@evil.com"}}, wantErr: "mail domain not allowed"},
		{name: "fail/cn not among SANs", req: Request{CommonName: "x.internal", DNSNames: []string{"y.internal"}}, wantErr: "must also be one of the SANs"},
		{name: "fail/cn outside policy", req: Request{CommonName: "evil.com"}, wantErr: "not within"},
		{name: "fail/no names", req: Request{}, wantErr: "no names requested"},
		{name: "fail/101 SANs", req: Request{DNSNames: hosts(99, "internal"), IPAddresses: ips("127.0.0.1"), URIs: uris("spiffe://internal/a")},
			wantErr: "101 SANs requested; a certificate holds at most 100"},
		{name: "fail/ttl above max", req: Request{DNSNames: []string{"a.internal"}, TTL: 169 * time.Hour}, wantErr: "max_ttl of 168h0m0s"},
		{name: "fail/ttl under a second", req: Request{DNSNames: []string{"a.internal"}, TTL: 999 * time.Millisecond}, wantErr: "under a second"},
		{name: "fail/negative ttl", req: Request{DNSNames: []string{"a.internal"}, TTL: -time.Hour}, wantErr: "positive"},
		{name: "fail/rsa-1024", req: Request{DNSNames: []string{"a.internal"}, PublicKey: rsaPub(1024)}, wantErr: "too weak"},
		{name: "fail/rsa-4096 not in role", req: Request{DNSNames: []string{"a.internal"}, PublicKey: rsaPub(4096)}, wantErr: "not allowed by this role"},
		{name: "fail/odd rsa size", req: Request{DNSNames: []string{"a.internal"}, PublicKey: rsaPub(2056)}, wantErr: "only 2048"},
		{name: "fail/p224", req: Request{DNSNames: []string{"a.internal"}, PublicKey: &ecdsa.PublicKey{Curve: elliptic.P224()}}, wantErr: "P-224"},
		{name: "fail/no key", req: Request{DNSNames: []string{"a.internal"}, PublicKey: nil}, wantErr: "no public key"},
		{name: "fail/empty role allows nothing", role: &Role{Name: "empty"}, req: Request{DNSNames: []string{"a.internal"}}, wantErr: "none"},
		{name: "fail/all reasons listed", req: Request{DNSNames: []string{"a.com", "b.com"}, IPAddresses: ips("10.0.0.1")}, wantErr: `"b.com"`},
		{name: "fail/name over 253 characters", req: Request{DNSNames: []string{strings.Repeat("abcdefghi.", 26) + "internal"}}, wantErr: "longer than 253 characters"},
		{name: "fail/ipv6 zone", req: Request{IPAddresses: ips("fd00::1%eth0")}, wantErr: "IPv6 zones are not allowed"},
		{name: "fail/cn IP outside range", req: Request{CommonName: "10.1.2.3"}, wantErr: "outside"},
		{name: "fail/uri where the role allows none", role: noURIs, req: Request{DNSNames: []string{"a.internal"}, URIs: uris("spiffe://internal/x")}, wantErr: "this role allows no URI SANs"},
		{name: "fail/email mailbox with a space", role: mail, req: Request{Emails: []string{"o ps@corp.internal"}}, wantErr: "not a plain mailbox address"},
		{name: "fail/email domain syntax", role: mail, req: Request{Emails: []string{"ops@corp..internal"}}, wantErr: "mail domain: "},
		{name: "fail/bare and subdomains described", role: bareAndSub, req: Request{DNSNames: []string{"example.com"}}, wantErr: "internal and its subdomains"},
		{name: "fail/bare only described", role: bare, req: Request{DNSNames: []string{"a.internal"}}, wantErr: "this role allows (internal, localhost)"},
		{name: "fail/neither bare nor subdomains", role: neither, req: Request{DNSNames: []string{"internal"}}, wantErr: "neither bare domains nor subdomains are enabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			role := c.role
			if role == nil {
				role = testRole()
			}
			if c.req.PublicKey == nil && c.name != "fail/no key" {
				c.req.PublicKey = p256
			}
			d, err := Evaluate(role, &c.req)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.check != nil {
					c.check(t, d)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed %+v, want refusal with %q", d, c.wantErr)
			}
			if d != nil {
				t.Fatal("decision returned with an error")
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %q lacks %q", err, c.wantErr)
			}
		})
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
}

func TestCheckCertificate(t *testing.T) {
	r := testRole()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	good := func() *x509.Certificate {
		return &x509.Certificate{
			PublicKey: p256, DNSNames: []string{"a.internal"},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			NotBefore:   now.Add(-Backdate), NotAfter: now.Add(24 * time.Hour),
		}
	}
	if err := CheckCertificate(r, good()); err != nil {
		t.Fatalf("ok/good: %v", err)
	}
	bad := map[string]func(c *x509.Certificate){
		"fail/ca":             func(c *x509.Certificate) { c.IsCA = true; c.BasicConstraintsValid = true },
		"fail/certsign":       func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign },
		"fail/codesigning":    func(c *x509.Certificate) { c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) },
		"fail/name":           func(c *x509.Certificate) { c.DNSNames = []string{"evil.com"} },
		"fail/no names":       func(c *x509.Certificate) { c.DNSNames = nil },
		"fail/too long":       func(c *x509.Certificate) { c.NotAfter = now.Add(200 * time.Hour) },
		"fail/constraints":    func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"internal"} },
		"fail/raw extension":  func(c *x509.Certificate) { c.ExtraExtensions = append(c.ExtraExtensions, pkixExt(2, 5, 29, 19)) },
		"fail/pathlen":        func(c *x509.Certificate) { c.MaxPathLenZero = true },
		"fail/two SPIFFE IDs": func(c *x509.Certificate) { c.URIs = uris("spiffe://internal/a", "spiffe://internal/b") },
	}
	for name, mutate := range bad {
		c := good()
		mutate(c)
		if err := CheckCertificate(r, c); err == nil {
			t.Errorf("%s: allowed", name)
		}
	}
}

// cnIs checks the decision's subject CN.
func cnIs(want string) func(*testing.T, *Decision) {
	return func(t *testing.T, d *Decision) {
		t.Helper()
		if d.CommonName != want {
			t.Errorf("subject CN %q, want %q", d.CommonName, want)
		}
	}
}

// hosts returns n distinct names under domain.
func hosts(n int, domain string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d.%s", i, domain)
	}
	return out
}

// TestTooManyNamesIsOneReason: a request over MaxNames is refused as a whole,
// not with one reason per name (the names here are all outside the role too).
func TestTooManyNamesIsOneReason(t *testing.T) {
	_, err := Evaluate(testRole(), &Request{DNSNames: hosts(MaxNames+1, "evil.com"), PublicKey: p256})
	var rej *Rejection
	if !errors.As(err, &rej) || len(rej.Reasons) != 1 || rej.Reasons[0].Field != "names" || rej.Reasons[0].Value != "101" {
		t.Fatalf("want one reason on names, got %v", err)
	}
}

// TestCheckIdentifier: ACME identifiers are checked as sent — a DNS
// identifier must already be in canonical form (RFC 8555 §7.1.4), an IP
// must parse — and then against the role like any name.
func TestCheckIdentifier(t *testing.T) {
	r := testRole()
	for _, tc := range []struct{ typ, value, want string }{
		{"dns", "a.internal", ""},
		{"ip", "127.0.0.2", ""},
		{"ip", "fd00::2", ""},
		{"dns", "A.internal", "lower case without a trailing dot"},
		{"dns", "a.internal.", "lower case without a trailing dot"},
		{"dns", "a.example", "not within"},
		{"ip", "127.0.0", "not an IP address"},
		{"ip", "10.0.0.1", "outside"},
		{"email", "a@internal", "identifier type email is not supported (dns, ip)"},
	} {
		got := CheckIdentifier(r, tc.typ, tc.value)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s %q: %q, want %q", tc.typ, tc.value, got, tc.want)
		}
	}
}
