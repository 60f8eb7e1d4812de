package acme

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// oidACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1).
var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// TLSALPNValidator validates tls-alpn-01 (RFC 8737; IP identifiers per
// RFC 8738 §6): a TLS handshake offering only "acme-tls/1" must present a
// certificate whose only SAN is the identifier and whose critical
// acmeIdentifier extension holds SHA-256 of the key authorization.
type TLSALPNValidator struct {
	Resolver *Resolver
	Port     int
}

// Supports implements Validator.
func (v *TLSALPNValidator) Supports(t string) bool { return t == "tls-alpn-01" }

// Validate implements Validator.
func (v *TLSALPNValidator) Validate(ctx context.Context, c Challenge) error {
	var addrs []netip.Addr
	sni := c.Identifier.Value
	if c.Identifier.Type == "ip" {
		a, err := netip.ParseAddr(c.Identifier.Value)
		if err != nil {
			return malformed("bad IP identifier")
		}
		addrs = []netip.Addr{a}
		sni = reverseName(a)
	} else {
		var err error
		if addrs, err = v.Resolver.LookupIP(ctx, c.Identifier.Value); err != nil {
			return dnsProblem(err.Error())
		}
	}
	cfg := insecureTLS()
	cfg.NextProtos = []string{"acme-tls/1"}
	cfg.ServerName = sni
	d := &tls.Dialer{NetDialer: validationDialer(), Config: cfg}
	conn, err := dialFirst(ctx, c.Identifier.Value, addrs, uint16(v.Port), d.DialContext)
	if err != nil {
		if p, ok := errors.AsType[*Problem](err); ok {
			return p // no address validation may connect to
		}
		return tlsProblem(fmt.Sprintf("tls-alpn-01 handshake with %s port %s: %v", c.Identifier.Value, strconv.Itoa(v.Port), err))
	}
	st := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	return checkALPNCert(st, c)
}

func checkALPNCert(st tls.ConnectionState, c Challenge) error {
	if st.NegotiatedProtocol != "acme-tls/1" {
		return unauthorized(fmt.Sprintf("server did not negotiate ALPN acme-tls/1 (got %q)", st.NegotiatedProtocol))
	}
	if len(st.PeerCertificates) == 0 {
		return unauthorized("no certificate presented")
	}
	cert := st.PeerCertificates[0]
	switch c.Identifier.Type {
	case "dns":
		if len(cert.DNSNames) != 1 || len(cert.IPAddresses) != 0 || cert.DNSNames[0] != c.Identifier.Value {
			return wrongSANs(cert, c.Identifier.Value)
		}
	case "ip":
		want, _ := netip.ParseAddr(c.Identifier.Value)
		if len(cert.IPAddresses) != 1 || len(cert.DNSNames) != 0 || !cert.IPAddresses[0].Equal(want.AsSlice()) {
			return wrongSANs(cert, c.Identifier.Value)
		}
	}
	if len(cert.URIs)+len(cert.EmailAddresses) > 0 {
		return unauthorized("certificate carries SANs other than the identifier")
	}
	sum := sha256.Sum256([]byte(c.KeyAuth))
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidACMEIdentifier) {
			continue
		}
		if !ext.Critical {
			return unauthorized("the acmeIdentifier extension must be critical")
		}
		var got []byte
		if rest, err := asn1.Unmarshal(ext.Value, &got); err != nil || len(rest) > 0 {
			return unauthorized("the acmeIdentifier extension is not an OCTET STRING")
		}
		if !bytes.Equal(got, sum[:]) {
			return incorrectResponse("the acmeIdentifier extension does not hold SHA-256 of the key authorization")
		}
		return nil
	}
	return unauthorized("certificate lacks the acmeIdentifier extension (1.3.6.1.5.5.7.1.31)")
}

// wrongSANs says how the certificate's SANs differ from the identifier by
// counting them, not listing them: a DNS record could have pointed the CA
// at a host whose names its requester cannot see.
func wrongSANs(cert *x509.Certificate, want string) error {
	return unauthorized(fmt.Sprintf("the certificate's SANs (%d DNS names, %d IP addresses) are not exactly %s", len(cert.DNSNames), len(cert.IPAddresses), want))
}

// reverseName is the in-addr.arpa / ip6.arpa name RFC 8738 uses as the
// SNI for IP identifiers.
func reverseName(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0])
	}
	b := a.As16()
	var s []byte
	for i := len(b) - 1; i >= 0; i-- {
		s = append(s, "0123456789abcdef"[b[i]&0xf], '.', "0123456789abcdef"[b[i]>>4], '.')
	}
	return string(s) + "ip6.arpa"
}
