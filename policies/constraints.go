package policies

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// OutsideConstraints says why a certificate carrying tmpl's names, signed
// by issuer, would break issuer's name constraints (RFC 5280 §4.2.1.10),
// or "" if it would not. A role may allow more than the intermediate's
// constraints do (pkid init --permitted-domain, or an intermediate made
// elsewhere); such a certificate verifies nowhere, so it is not signed.
func OutsideConstraints(issuer, tmpl *x509.Certificate) string {
	if !constrained(issuer) {
		return ""
	}
	for _, n := range tmpl.DNSNames {
		if why := OutsideConstraint(issuer, "dns", n); why != "" {
			return why
		}
	}
	for _, ip := range tmpl.IPAddresses {
		if why := OutsideConstraint(issuer, "ip", ip.String()); why != "" {
			return why
		}
	}
	for _, u := range tmpl.URIs {
		if why := OutsideConstraint(issuer, "uri", u.String()); why != "" {
			return why
		}
	}
	for _, e := range tmpl.EmailAddresses {
		if why := OutsideConstraint(issuer, "email", e); why != "" {
			return why
		}
	}
	return ""
}

func constrained(c *x509.Certificate) bool {
	return len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+len(c.PermittedIPRanges)+len(c.ExcludedIPRanges)+
		len(c.PermittedEmailAddresses)+len(c.ExcludedEmailAddresses)+len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) > 0
}

// NamesOutside is OutsideConstraints for names given as text (pkid's own
// TLS names, from flags or pkid.yaml), or "" if issuer allows them all.
func NamesOutside(issuer *x509.Certificate, dnsNames, ips []string) string {
	for _, n := range dnsNames {
		if why := OutsideConstraint(issuer, "dns", n); why != "" {
			return why
		}
	}
	for _, ip := range ips {
		if why := OutsideConstraint(issuer, "ip", ip); why != "" {
			return why
		}
	}
	return ""
}

// OutsideConstraint is OutsideConstraints for one name of type typ (dns,
// ip, uri, email), as an ACME identifier or a command-line flag gives it.
// A type the issuer does not constrain is not looked at.
func OutsideConstraint(issuer *x509.Certificate, typ, value string) string {
	switch typ {
	case "dns":
		return verdict(typ, value, issuer.PermittedDNSDomains, issuer.ExcludedDNSDomains, func(c string) bool { return domainMatches(value, c) })
	case "ip":
		if len(issuer.PermittedIPRanges)+len(issuer.ExcludedIPRanges) == 0 {
			return ""
		}
		ip := net.ParseIP(value)
		if ip == nil {
			return fmt.Sprintf("ip %q is not an IP address", value)
		}
		return verdict(typ, value, issuer.PermittedIPRanges, issuer.ExcludedIPRanges, func(c *net.IPNet) bool { return c.Contains(ip) })
	case "email":
		return verdict(typ, value, issuer.PermittedEmailAddresses, issuer.ExcludedEmailAddresses, func(c string) bool { return emailMatches(value, c) })
	case "uri":
		if len(issuer.PermittedURIDomains)+len(issuer.ExcludedURIDomains) == 0 {
			return ""
		}
		u, err := url.Parse(value)
		if err != nil {
			return fmt.Sprintf("uri %q does not parse", value)
		}
		host := u.Hostname()
		if host == "" || net.ParseIP(host) != nil {
			return fmt.Sprintf("uri %s: the intermediate constrains URIs, and one whose host is empty or an IP address matches no constraint", value)
		}
		return verdict(typ, value, issuer.PermittedURIDomains, issuer.ExcludedURIDomains, func(c string) bool { return uriHostMatches(host, c) })
	default:
		return fmt.Sprintf("name type %q is unknown", typ)
	}
}

// verdict applies one name type's constraints to value: any excluded
// subtree that matches refuses it, and if there are permitted subtrees,
// one must match.
func verdict[C any](typ, value string, permitted, excluded []C, match func(C) bool) string {
	for _, c := range excluded {
		if match(c) {
			return fmt.Sprintf("%s %s is excluded by the intermediate's name constraints (%v)", typ, value, c)
		}
	}
	if len(permitted) == 0 || slices.ContainsFunc(permitted, match) {
		return ""
	}
	list := make([]string, len(permitted))
	for i, c := range permitted {
		list[i] = fmt.Sprint(c)
	}
	return fmt.Sprintf("%s %s is outside the intermediate's name constraints (permitted %s: %s)", typ, value, typ, strings.Join(list, ", "))
}

// domainMatches is RFC 5280's dNSName rule: "example.com" is that name and
// every name under it; ".example.com" only the names under it.
func domainMatches(name, constraint string) bool {
	name, constraint = strings.ToLower(strings.TrimSuffix(name, ".")), strings.ToLower(constraint)
	switch {
	case constraint == "":
		return true
	case strings.HasPrefix(constraint, "."):
		return strings.HasSuffix(name, constraint) && len(name) > len(constraint)
	default:
		return name == constraint || strings.HasSuffix(name, "."+constraint)
	}
}

// emailMatches is RFC 5280's rfc822Name rule: "user@host" is that mailbox,
// "host" every mailbox at that host, ".host" every mailbox under it.
func emailMatches(email, constraint string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	host := strings.ToLower(email[at+1:])
	switch {
	case strings.Contains(constraint, "@"):
		ca := strings.LastIndexByte(constraint, '@')
		return email[:at] == constraint[:ca] && host == strings.ToLower(constraint[ca+1:])
	case strings.HasPrefix(constraint, "."):
		return strings.HasSuffix(host, strings.ToLower(constraint))
	default:
		return host == strings.ToLower(constraint)
	}
}

// uriHostMatches is RFC 5280's uniformResourceIdentifier rule on the
// host: "host" is exactly that host, ".host" any host under it.
func uriHostMatches(host, constraint string) bool {
	host, constraint = strings.ToLower(host), strings.ToLower(constraint)
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(host, constraint) && len(host) > len(constraint)
	}
	return host == constraint
}
