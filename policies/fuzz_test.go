package policies

import (
	"crypto/x509"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzEvaluate feeds arbitrary names to the evaluator: it must never panic,
// and anything it allows must pass CheckCertificate's independent re-check
// of the same names.
func FuzzEvaluate(f *testing.F) {
	for _, s := range []string{"svc.internal", "*.internal", "a..internal", "xn--zz.internal", "INTERNAL.", "127.0.0.1", "spiffe://internal/a", "a@internal", "аpple.internal", "::ffff:127.0.0.1"} {
		f.Add(s, s)
	}
	f.Add("Svc.Internal.", "svc.internal")
	f.Add("FD12:0::1", "fd12::1")
	f.Add("", "spiffe://internal/ns%2Fprod/x")
	role := testRole()
	role.AllowWildcards = true
	f.Fuzz(func(t *testing.T, cn, san string) {
		req := &Request{CommonName: cn, PublicKey: p256, TTL: time.Hour}
		if ip, err := netip.ParseAddr(san); err == nil {
			req.IPAddresses = append(req.IPAddresses, ip)
		} else if strings.Contains(san, "://") {
			if u, err := url.Parse(san); err == nil {
				req.URIs = append(req.URIs, u)
			}
		} else if san != "" {
			req.DNSNames = append(req.DNSNames, san)
		}
		d, err := Evaluate(role, req)
		if err != nil {
			return
		}
		for _, n := range d.DNSNames {
			if why := checkDNS(role, n); why != "" {
				t.Fatalf("allowed %q but re-check says %s", n, why)
			}
		}
		if len(d.CommonName) > MaxCNLength {
			t.Fatalf("CN %q too long", d.CommonName)
		}
		for _, u := range d.URIs {
			if strings.Contains(u.String(), "%") || u.Host != strings.ToLower(u.Host) {
				t.Fatalf("allowed URI %q: the certificate would not carry the form the role checked", u)
			}
		}
		if cn := d.CommonName; cn != "" && !slices.Contains(sanStrings(d), cn) {
			t.Fatalf("CN %q is not exactly one of the SANs %q", cn, sanStrings(d))
		}
	})
}

// sanStrings is every SAN of d written as it appears in the certificate.
func sanStrings(d *Decision) []string {
	out := append([]string{}, d.DNSNames...)
	for _, ip := range d.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range d.URIs {
		out = append(out, u.String())
	}
	return append(out, d.Emails...)
}

// FuzzMatchClaims feeds arbitrary claim values (from a CI provider's
// token) against a literal condition and a glob: it must never panic, a
// literal matches only itself, a glob's "*" never crosses a "/" (a branch
// pattern must not admit refs/heads/x/../../tags), and what it reports as
// used is what the token said.
func FuzzMatchClaims(f *testing.F) {
	for _, s := range []string{"org/app", "org/app/", "ORG/app", "refs/heads/main", "refs/heads/a/b", "refs/tags/v1", "", "*", "refs/heads/[", "\x00"} {
		f.Add(s, s)
	}
	trust := &OIDCTrust{Claims: map[string]string{"repository": "org/app", "ref": "refs/heads/*"}}
	f.Fuzz(func(t *testing.T, repo, ref string) {
		used, err := MatchClaims(trust, map[string]any{"repository": repo, "ref": ref})
		ok := repo == "org/app" && strings.HasPrefix(ref, "refs/heads/") && !strings.Contains(ref[len("refs/heads/"):], "/")
		if (err == nil) != ok {
			t.Fatalf("repository %q ref %q: matched %v, want %v (%v)", repo, ref, err == nil, ok, err)
		}
		if err == nil && (used["repository"] != repo || used["ref"] != ref || len(used) != 2) {
			t.Fatalf("used %v for repository %q ref %q", used, repo, ref)
		}
	})
}

// FuzzOutsideConstraint: any name of any type against constraints of every
// type never panics, and a name inside a DNS constraint is inside it in
// upper case too.
func FuzzOutsideConstraint(f *testing.F) {
	for _, s := range []string{"web.internal", "*.internal", "internal", "10.1.2.3", "fd00::1", "ops@corp.internal", "spiffe://internal/x", "https://[::1]/", "@", "", "."} {
		f.Add("dns", s)
		f.Add("ip", s)
		f.Add("email", s)
		f.Add("uri", s)
	}
	_, v4, _ := net.ParseCIDR("10.0.0.0/8")
	issuer := &x509.Certificate{PermittedDNSDomains: []string{"internal", ".corp.example"}, ExcludedDNSDomains: []string{"secret.internal"},
		PermittedIPRanges: []*net.IPNet{v4}, PermittedEmailAddresses: []string{"corp.internal", "a@b.example"}, PermittedURIDomains: []string{".internal"}}
	f.Fuzz(func(t *testing.T, typ, value string) {
		why := OutsideConstraint(issuer, typ, value)
		if typ == "dns" && why == "" && OutsideConstraint(issuer, typ, strings.ToUpper(value)) != "" {
			t.Fatalf("%q is inside the constraints, its upper case is not", value)
		}
	})
}
