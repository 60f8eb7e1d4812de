package policies

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxNames bounds the SANs of one certificate (and the identifiers of one
// ACME order), as Let's Encrypt does: a request for thousands of names is a
// mistake or an attack, and every name costs a check, bytes in every TLS
// handshake and, over ACME, a validation.
const MaxNames = 100

// MaxCNLength is the RFC 5280 upper bound on a commonName; a longer CN is
// kept as a SAN and left out of the subject.
const MaxCNLength = 64

// Request is what a requester asks for, already parsed from a CSR or a JSON
// body. Nothing in it is trusted.
type Request struct {
	CommonName string
	DNSNames   []string
	// IPAddresses keep the distinction between IPv4 and IPv4-mapped IPv6
	// (net.IP loses it), so the mapped form can be refused.
	IPAddresses []netip.Addr
	URIs        []*url.URL
	Emails      []string
	PublicKey   crypto.PublicKey
	// TTL is the requested lifetime; zero asks for the role's default.
	TTL time.Duration
}

// Decision is what may be issued: names normalized, the CN among them, and
// usages and lifetime taken from the role alone.
type Decision struct {
	// CommonName is the subject CN, empty when the CN was over 64 characters.
	CommonName  string
	DNSNames    []string
	IPAddresses []net.IP
	URIs        []*url.URL
	Emails      []string
	TTL         time.Duration
	KeyType     string
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
}

// Names returns every SAN of the decision as text, DNS first.
func (d *Decision) Names() []string {
	var out []string
	out = append(out, d.DNSNames...)
	for _, ip := range d.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range d.URIs {
		out = append(out, u.String())
	}
	return append(out, d.Emails...)
}

// Reason is one refused item.
type Reason struct {
	Field   string // "dns", "ip", "uri", "email", "cn", "key", "ttl", "names"
	Value   string
	Message string
}

// String renders the reason as a problem detail shows it: field, value, why.
func (r Reason) String() string {
	if r.Value == "" {
		return r.Field + ": " + r.Message
	}
	return fmt.Sprintf("%s %q: %s", r.Field, r.Value, r.Message)
}

// Rejection lists every reason a request was refused, so a client can fix all
// of them at once.
type Rejection struct {
	Role    string
	Reasons []Reason
}

// Error joins every reason, so one message says all that must change.
func (e *Rejection) Error() string {
	s := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		s[i] = r.String()
	}
	return fmt.Sprintf("role %q refuses: %s", e.Role, strings.Join(s, "; "))
}

// OnlyNames reports whether every reason concerns an identifier, which ACME
// answers with rejectedIdentifier rather than a generic refusal.
func (e *Rejection) OnlyNames() bool {
	for _, r := range e.Reasons {
		switch r.Field {
		case "dns", "ip", "uri", "email", "cn", "names":
		default:
			return false
		}
	}
	return true
}

// Evaluate decides req against r. It never returns both a Decision and an
// error.
func Evaluate(r *Role, req *Request) (*Decision, error) {
	var reasons []Reason
	refuse := func(field, value, msg string) {
		reasons = append(reasons, Reason{Field: field, Value: value, Message: msg})
	}
	d := &Decision{}
	// Refused before any name is looked at, so the answer is one reason
	// rather than one per name.
	if n := len(req.DNSNames) + len(req.IPAddresses) + len(req.URIs) + len(req.Emails); n > MaxNames {
		refuse("names", strconv.Itoa(n), fmt.Sprintf("%d SANs requested; a certificate holds at most %d", n, MaxNames))
		return nil, &Rejection{Role: r.Name, Reasons: reasons}
	}

	seen := map[string]bool{}
	for _, n := range req.DNSNames {
		name := NormalizeDNS(n)
		if why := checkDNS(r, name); why != "" {
			refuse("dns", n, why)
			continue
		}
		if !seen["dns:"+name] {
			seen["dns:"+name] = true
			d.DNSNames = append(d.DNSNames, name)
		}
	}
	for _, ip := range req.IPAddresses {
		if why := checkAddr(r, ip); why != "" {
			refuse("ip", ip.String(), why)
			continue
		}
		if !seen["ip:"+ip.String()] {
			seen["ip:"+ip.String()] = true
			d.IPAddresses = append(d.IPAddresses, net.IP(ip.AsSlice()))
		}
	}
	for _, u := range req.URIs {
		if why := checkURI(r, u); why != "" {
			refuse("uri", u.String(), why)
			continue
		}
		d.URIs = append(d.URIs, u)
	}
	if why := oneSPIFFEID(req.URIs); why != "" {
		refuse("uri", "", why)
	}
	for _, e := range req.Emails {
		if why := checkEmail(r, e); why != "" {
			refuse("email", e, why)
			continue
		}
		if e = normalizeEmail(e); !slices.Contains(d.Emails, e) {
			d.Emails = append(d.Emails, e)
		}
	}

	if cn := req.CommonName; cn != "" {
		hasSANs := len(req.DNSNames)+len(req.IPAddresses)+len(req.URIs)+len(req.Emails) > 0
		ip, ipErr := netip.ParseAddr(cn)
		// The subject carries the CN in the exact form of the SAN it names
		// ("Web.Internal." becomes "web.internal"), so it is one of the
		// certificate's SAN values and not merely equal to one.
		var canon string
		switch {
		case !hasSANs && ipErr == nil:
			if why := checkAddr(r, ip); why != "" {
				refuse("cn", cn, why)
			} else {
				d.IPAddresses = append(d.IPAddresses, net.IP(ip.AsSlice()))
				canon = ip.String()
			}
		case !hasSANs:
			name := NormalizeDNS(cn)
			if why := checkDNS(r, name); why != "" {
				refuse("cn", cn, why)
			} else {
				d.DNSNames = append(d.DNSNames, name)
				canon = name
			}
		default:
			if canon = cnAmongSANs(cn, req); canon == "" {
				refuse("cn", cn, "the common name must also be one of the SANs requested")
			}
		}
		if len(canon) <= MaxCNLength {
			d.CommonName = canon
		}
	}
	if len(d.Names()) == 0 && len(reasons) == 0 {
		refuse("names", "", "no names requested; give a common name or at least one SAN")
	}

	kt, why := KeyTypeOf(req.PublicKey)
	if why != "" {
		refuse("key", kt, why)
	} else if !slices.Contains(r.KeyTypes, kt) {
		refuse("key", kt, "key type not allowed by this role (allowed: "+strings.Join(r.KeyTypes, ", ")+")")
	}
	d.KeyType = kt

	switch {
	case req.TTL < 0:
		refuse("ttl", req.TTL.String(), "must be positive")
	case req.TTL > 0 && req.TTL < time.Second:
		refuse("ttl", req.TTL.String(), "under a second: certificate times are whole seconds")
	case req.TTL == 0:
		d.TTL = r.DefaultTTL
	case req.TTL > r.MaxTTL:
		refuse("ttl", req.TTL.String(), "above this role's max_ttl of "+r.MaxTTL.String())
	default:
		d.TTL = req.TTL
	}
	if len(reasons) > 0 {
		return nil, &Rejection{Role: r.Name, Reasons: reasons}
	}
	d.KeyUsage, d.ExtKeyUsage = Usages(r, req.PublicKey)
	return d, nil
}

// cnAmongSANs returns the SAN of req that cn names, in the form it takes in
// the certificate, or "" when cn names none of them.
func cnAmongSANs(cn string, req *Request) string {
	n := NormalizeDNS(cn)
	for _, s := range req.DNSNames {
		if NormalizeDNS(s) == n {
			return n
		}
	}
	if ip, err := netip.ParseAddr(cn); err == nil {
		for _, s := range req.IPAddresses {
			if s == ip {
				return ip.String()
			}
		}
	}
	for _, u := range req.URIs {
		if u.String() == cn {
			return cn
		}
	}
	for _, e := range req.Emails {
		if ne := normalizeEmail(e); ne == normalizeEmail(cn) {
			return ne
		}
	}
	return ""
}

// Usages returns the key usage and EKUs a leaf of role r with key pub gets:
// digitalSignature always, keyEncipherment for RSA (TLS 1.2 RSA key
// exchange), and the role's EKUs.
func Usages(r *Role, pub crypto.PublicKey) (x509.KeyUsage, []x509.ExtKeyUsage) {
	ku := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	var ekus []x509.ExtKeyUsage
	for _, e := range r.ExtKeyUsage {
		switch e {
		case "server_auth":
			ekus = append(ekus, x509.ExtKeyUsageServerAuth)
		case "client_auth":
			ekus = append(ekus, x509.ExtKeyUsageClientAuth)
		case "email_protection":
			ekus = append(ekus, x509.ExtKeyUsageEmailProtection)
		}
	}
	return ku, ekus
}

// KeyTypeOf names pub in config spelling, or says why it is never accepted.
func KeyTypeOf(pub crypto.PublicKey) (string, string) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ec-p256", ""
		case elliptic.P384():
			return "ec-p384", ""
		}
		return "ec-" + strings.ToLower(k.Curve.Params().Name), "curve " + k.Curve.Params().Name + " is not accepted (use P-256 or P-384)"
	case ed25519.PublicKey:
		return "ed25519", ""
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		kt := fmt.Sprintf("rsa-%d", bits)
		if bits < 2048 {
			return kt, fmt.Sprintf("RSA key of %d bits is too weak (minimum 2048)", bits)
		}
		if !slices.Contains(KnownKeyTypes, kt) {
			return kt, fmt.Sprintf("RSA key of %d bits: only 2048, 3072 or 4096 bits are accepted", bits)
		}
		return kt, ""
	case nil:
		return "none", "no public key"
	}
	return fmt.Sprintf("%T", pub), "unsupported public key algorithm"
}
