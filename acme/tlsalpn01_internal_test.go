package acme

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"pkid/internal/testutil"
)

// TestCheckALPNCert covers what FuzzALPNCert leaves fixed: the negotiated
// protocol, a missing certificate, IP identifiers and SANs of other kinds.
// (FuzzALPNCert's seeds cover the acmeIdentifier extension itself.)
func TestCheckALPNCert(t *testing.T) {
	const keyAuth = "tok.thumb"
	sum := sha256.Sum256([]byte(keyAuth))
	good, _ := asn1.Marshal(sum[:])
	ext := []pkix.Extension{{Id: oidACMEIdentifier, Critical: true, Value: good}}
	dns := Ident{Type: "dns", Value: "a.internal"}
	ip := Ident{Type: "ip", Value: "127.0.0.7"}
	cert := func(names []string, ips []string, uris ...string) []*x509.Certificate {
		c := &x509.Certificate{DNSNames: names, Extensions: ext}
		for _, s := range ips {
			c.IPAddresses = append(c.IPAddresses, net.ParseIP(s))
		}
		for _, s := range uris {
			u, _ := url.Parse(s)
			c.URIs = append(c.URIs, u)
		}
		return []*x509.Certificate{c}
	}
	for _, tc := range []struct {
		name  string
		proto string
		certs []*x509.Certificate
		id    Ident
		want  string // "" accepts; else a part of the detail
	}{
		{"ok/dns", "acme-tls/1", cert([]string{"a.internal"}, nil), dns, ""},
		{"ok/ip", "acme-tls/1", cert(nil, []string{"127.0.0.7"}), ip, ""},
		{"fail/another protocol", "h2", cert([]string{"a.internal"}, nil), dns, "did not negotiate ALPN acme-tls/1"},
		{"fail/no protocol", "", cert([]string{"a.internal"}, nil), dns, "did not negotiate ALPN acme-tls/1"},
		{"fail/no certificate", "acme-tls/1", nil, dns, "no certificate"},
		{"fail/dns name for an ip", "acme-tls/1", cert([]string{"127.0.0.7"}, nil), ip, "are not exactly 127.0.0.7"},
		{"fail/another ip", "acme-tls/1", cert(nil, []string{"127.0.0.8"}), ip, "are not exactly 127.0.0.7"},
		{"fail/ip and name", "acme-tls/1", cert([]string{"a.internal"}, []string{"127.0.0.7"}), ip, "are not exactly 127.0.0.7"},
		{"fail/ip for a name", "acme-tls/1", cert([]string{"a.internal"}, []string{"127.0.0.7"}), dns, "are not exactly a.internal"},
		{"fail/two names", "acme-tls/1", cert([]string{"a.internal", "b.internal"}, nil), dns, "are not exactly a.internal"},
		{"fail/a URI besides", "acme-tls/1", cert([]string{"a.internal"}, nil, "spiffe://internal/x"), dns, "SANs other than the identifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tls.ConnectionState{NegotiatedProtocol: tc.proto, PeerCertificates: tc.certs}
			err := checkALPNCert(st, Challenge{Type: "tls-alpn-01", Identifier: tc.id, KeyAuth: keyAuth})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			p, ok := err.(*Problem)
			if !ok || p.Type != ns+"unauthorized" || !strings.Contains(p.Detail, tc.want) {
				t.Fatalf("got %v, want unauthorized with %q", err, tc.want)
			}
			// The detail never names what only the certificate names: the
			// CA may have been pointed at a host its requester cannot see.
			for _, c := range tc.certs {
				for _, n := range append(c.DNSNames, fmtIPs(c.IPAddresses)...) {
					if n != tc.id.Value && strings.Contains(p.Detail, n) {
						t.Fatalf("detail %q names %s", p.Detail, n)
					}
				}
			}
		})
	}
}

// TestCheckALPNExtension: the acmeIdentifier extension must be critical,
// an OCTET STRING, and hold SHA-256 of this challenge's key authorization
// (another digest is an incorrect response, RFC 8737 §3).
func TestCheckALPNExtension(t *testing.T) {
	const keyAuth = "tok.thumb"
	sum := sha256.Sum256([]byte(keyAuth))
	good, _ := asn1.Marshal(sum[:])
	other := sha256.Sum256([]byte("tok.another-thumb"))
	wrong, _ := asn1.Marshal(other[:])
	notOctets, _ := asn1.Marshal(42)
	for _, tc := range []struct {
		name, typ, detail string
		ext               pkix.Extension
	}{
		{"ok/critical digest", "", "", pkix.Extension{Id: oidACMEIdentifier, Critical: true, Value: good}},
		{"fail/not critical", "unauthorized", "must be critical", pkix.Extension{Id: oidACMEIdentifier, Value: good}},
		{"fail/not an OCTET STRING", "unauthorized", "not an OCTET STRING", pkix.Extension{Id: oidACMEIdentifier, Critical: true, Value: notOctets}},
		{"fail/trailing bytes", "unauthorized", "not an OCTET STRING", pkix.Extension{Id: oidACMEIdentifier, Critical: true, Value: append(append([]byte{}, good...), 0)}},
		{"fail/another key authorization", "incorrectResponse", "does not hold SHA-256 of the key authorization", pkix.Extension{Id: oidACMEIdentifier, Critical: true, Value: wrong}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tls.ConnectionState{NegotiatedProtocol: "acme-tls/1", PeerCertificates: []*x509.Certificate{{DNSNames: []string{"a.internal"}, Extensions: []pkix.Extension{tc.ext}}}}
			err := checkALPNCert(st, Challenge{Type: "tls-alpn-01", Identifier: Ident{Type: "dns", Value: "a.internal"}, KeyAuth: keyAuth})
			if tc.typ == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if p, ok := err.(*Problem); !ok || p.Type != ns+tc.typ || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("got %v, want %s with %q", err, tc.typ, tc.detail)
			}
		})
	}
}

// TestTLSALPNNoServer: nothing answers on the validation port, so the
// challenge fails with a "tls" problem that names the address and port.
func TestTLSALPNNoServer(t *testing.T) {
	_, p, _ := net.SplitHostPort(testutil.FreeAddr(t))
	port, _ := strconv.Atoi(p)
	v := &TLSALPNValidator{Port: port}
	err := v.Validate(context.Background(), Challenge{Type: "tls-alpn-01", Identifier: Ident{Type: "ip", Value: "127.0.0.1"}, KeyAuth: "tok.thumb"})
	prob, ok := err.(*Problem)
	if !ok || prob.Type != ns+"tls" || !strings.Contains(prob.Detail, "127.0.0.1 port "+strconv.Itoa(port)) {
		t.Fatalf("got %v", err)
	}
}

// TestReverseName: RFC 8738's SNI for IP identifiers.
func TestReverseName(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.7":   "7.0.0.127.in-addr.arpa",
		"::1":         "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
		"2001:db8::a": "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	} {
		if got := reverseName(netip.MustParseAddr(in)); got != want {
			t.Errorf("reverseName(%s) = %s, want %s", in, got, want)
		}
	}
}

func fmtIPs(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}
