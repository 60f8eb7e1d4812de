package policies

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
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

// OutsideConstraint is OutsideConstraints for one name of type typ (dns,
// ip, uri, email), as an ACME identifier or a command-line flag gives it.
func OutsideConstraint(issuer *x509.Certificate, typ, value string) string {
	var permitted, excluded []string
	var match func(constraint string) bool
	switch typ {
	case "dns":
		permitted, excluded = issuer.PermittedDNSDomains, issuer.ExcludedDNSDomains
		match = func(c string) bool { return domainMatches(value, c) }
	case "ip":
		ip := net.ParseIP(value)
		if ip == nil {
			return fmt.Sprintf("ip %q is not an IP address", value)
		}
		permitted, excluded = netStrings(issuer.PermittedIPRanges), netStrings(issuer.ExcludedIPRanges)
		match = func(c string) bool { _, n, err := net.ParseCIDR(c); return err == nil && n.Contains(ip) }
	case "email":
		permitted, excluded = issuer.PermittedEmailAddresses, issuer.ExcludedEmailAddresses
		match = func(c string) bool { return emailMatches(value, c) }
	case "uri":
		u, err := url.Parse(value)
		if err != nil {
			return fmt.Sprintf("uri %q does not parse", value)
		}
		host := u.Hostname()
		if len(issuer.PermittedURIDomains)+len(issuer.ExcludedURIDomains) > 0 && (host == "" || net.ParseIP(host) != nil) {
			return fmt.Sprintf("uri %s: the intermediate constrains URIs, and one whose host is empty or an IP address matches no constraint", value)
		}
		permitted, excluded = issuer.PermittedURIDomains, issuer.ExcludedURIDomains
		match = func(c string) bool { return uriHostMatches(host, c) }
	default:
		return fmt.Sprintf("name type %q is unknown", typ)
	}
	for _, c := range excluded {
		if match(c) {
			return fmt.Sprintf("%s %s is excluded by the intermediate's name constraints (%s)", typ, value, c)
		}
	}
	if len(permitted) == 0 {
		return ""
	}
	for _, c := range permitted {
		if match(c) {
			return ""
		}
	}
	return fmt.Sprintf("%s %s is outside the intermediate's name constraints (permitted %s: %s)", typ, value, typ, strings.Join(permitted, ", "))
}

func netStrings(ns []*net.IPNet) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.String()
	}
	return out
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
