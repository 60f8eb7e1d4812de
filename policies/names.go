package policies

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strings"

	"golang.org/x/net/idna"
)

// NormalizeDNS lower-cases name and drops one trailing dot, the forms under
// which "INTERNAL" and "internal." are the same name as "internal".
func NormalizeDNS(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// DomainSyntax reports why name (normalized, wildcard label removed) is not
// a hostname in preferred LDH syntax, or "" when it is. Config checks the
// domains a role names with it too: a malformed one would match no name and
// quietly allow nothing.
func DomainSyntax(name string) string {
	if name == "" {
		return "empty name"
	}
	if len(name) > 253 {
		return "longer than 253 characters"
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return "empty label (two dots in a row, or a leading dot)"
		}
		if len(label) > 63 {
			return fmt.Sprintf("label %q is longer than 63 characters", label)
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			case c == '*':
				return "'*' is allowed only as the whole leftmost label"
			case c > 127:
				return fmt.Sprintf("label %q is not ASCII; internationalized names must be written as A-labels (xn--...)", label)
			default:
				return fmt.Sprintf("label %q holds %q; only letters, digits and '-' are allowed", label, c)
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("label %q starts or ends with '-'", label)
		}
		if len(label) >= 4 && label[2:4] == "--" {
			if !strings.HasPrefix(label, "xn--") {
				return fmt.Sprintf("label %q has '--' in positions 3-4, reserved for A-labels", label)
			}
			if _, err := idna.Lookup.ToUnicode(label); err != nil {
				return fmt.Sprintf("label %q is not a valid A-label: %v", label, err)
			}
		}
	}
	return ""
}

// checkDNS returns "" if role allows name (already normalized) or the reason
// it does not.
func checkDNS(r *Role, name string) string {
	base := name
	wildcard := strings.HasPrefix(name, "*.")
	if wildcard {
		base = name[2:]
	}
	if why := DomainSyntax(base); why != "" {
		return why
	}
	if _, err := netip.ParseAddr(base); err == nil {
		// All-digit labels pass DNS syntax, but an address in a DNS SAN
		// is one no client matches against the address it dialled.
		return "an IP address written as a DNS name; request it as an IP address (ip_addresses, or an IP SAN in the CSR)"
	}
	if wildcard && !r.AllowWildcards {
		return "wildcard names are not allowed by this role"
	}
	for _, d := range r.AllowedDomains {
		d = NormalizeDNS(d)
		if !wildcard && base == d {
			if r.AllowBareDomains {
				return ""
			}
			continue
		}
		if base == d || strings.HasSuffix(base, "."+d) {
			// A subdomain, or a wildcard over d or one of its subdomains:
			// both need subdomains to be allowed.
			if r.AllowSubdomains {
				return ""
			}
		}
	}
	return "not within the domains this role allows (" + describeDomains(r) + ")"
}

func describeDomains(r *Role) string {
	if len(r.AllowedDomains) == 0 {
		return "none"
	}
	var parts []string
	for _, d := range r.AllowedDomains {
		switch {
		case r.AllowBareDomains && r.AllowSubdomains:
			parts = append(parts, d+" and its subdomains")
		case r.AllowSubdomains:
			parts = append(parts, "subdomains of "+d)
		case r.AllowBareDomains:
			parts = append(parts, d)
		}
	}
	if len(parts) == 0 {
		return "none: neither bare domains nor subdomains are enabled"
	}
	s := strings.Join(parts, ", ")
	if r.AllowWildcards {
		s += "; wildcards allowed"
	}
	return s
}

// checkIP checks an IP taken from a certificate template. crypto/x509
// encodes any address with a 4-byte form as IPv4, so that form is checked.
func checkIP(r *Role, ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "not an IP address"
	}
	return checkAddr(r, addr)
}

// checkAddr returns "" if addr is inside one of the role's ranges.
func checkAddr(r *Role, addr netip.Addr) string {
	if addr.Zone() != "" {
		return "IPv6 zones are not allowed"
	}
	if addr.Is4In6() {
		return "IPv4-mapped IPv6 addresses are refused; write the IPv4 address itself"
	}
	for _, p := range r.AllowedIPRanges {
		if p.Contains(addr) {
			return ""
		}
	}
	return "outside the IP ranges this role allows (" + describePrefixes(r.AllowedIPRanges) + ")"
}

func describePrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// checkURI matches u against the role's patterns. A pattern is a URI whose
// scheme and host must match exactly; its path is a path.Match glob, except
// that a final "/*" matches any non-empty path below the prefix (the usual
// SPIFFE shape spiffe://trust-domain/ns/*).
func checkURI(r *Role, u *url.URL) string {
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "URI SANs may not carry user info, a query, a fragment or an opaque part"
	}
	if u.Path != "" && path.Clean(u.Path) != u.Path {
		return "URI path is not in clean form (no '.', '..', '//' or trailing '/')"
	}
	// The patterns are matched against the decoded path and host, so the
	// certificate must carry exactly those: no percent-encoding, and the
	// host in lower case (SPIFFE IDs allow neither).
	if strings.Contains(u.String(), "%") {
		return "URI SANs may not be percent-encoded (the role checks the decoded form; the certificate would carry another spelling)"
	}
	if u.Host != strings.ToLower(u.Host) {
		return "write the URI's host in lower case"
	}
	if strings.EqualFold(u.Scheme, "spiffe") {
		if why := spiffeIDSyntax(u); why != "" {
			return why
		}
	}
	for _, p := range r.AllowedURIPatterns {
		if uriMatches(p, u) {
			return ""
		}
	}
	if len(r.AllowedURIPatterns) == 0 {
		return "this role allows no URI SANs"
	}
	return "does not match the URI patterns this role allows (" + strings.Join(r.AllowedURIPatterns, ", ") + ")"
}

// spiffeIDSyntax holds a spiffe:// URI to the SPIFFE ID spec (§2): a trust
// domain of [a-z0-9.-_] without a port, and path segments of
// [a-zA-Z0-9.-_] (url.Parse has already written the scheme in lower case). Workloads' SPIFFE libraries (go-spiffe,
// java-spiffe) refuse any other spelling, so the certificate would be
// useless to them.
func spiffeIDSyntax(u *url.URL) string {
	const spec = " (SPIFFE ID, spec §2)"
	if u.Host == "" || u.Port() != "" || strings.Trim(u.Host, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != "" {
		return "a trust domain is letters a-z, digits, '.', '-' and '_', without a port" + spec
	}
	for seg := range strings.SplitSeq(strings.TrimPrefix(u.Path, "/"), "/") {
		if strings.Trim(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
			return fmt.Sprintf("path segment %q: only letters, digits, '.', '-' and '_'", seg) + spec
		}
	}
	return ""
}

// oneSPIFFEID refuses a certificate that would carry a SPIFFE ID beside
// another URI SAN: an X.509-SVID carries exactly one URI SAN (X.509-SVID
// spec §2), and SPIFFE libraries refuse one with more.
func oneSPIFFEID(uris []*url.URL) string {
	if len(uris) < 2 {
		return ""
	}
	for _, u := range uris {
		if strings.EqualFold(u.Scheme, "spiffe") {
			return fmt.Sprintf("%d URI SANs with a SPIFFE ID among them; an X.509-SVID carries exactly one URI SAN (X.509-SVID spec §2): ask for each in its own certificate", len(uris))
		}
	}
	return ""
}

func uriMatches(pattern string, u *url.URL) bool {
	pu, err := url.Parse(pattern)
	if err != nil {
		return false
	}
	if !strings.EqualFold(pu.Scheme, u.Scheme) || !strings.EqualFold(pu.Host, u.Host) {
		return false
	}
	if prefix, ok := strings.CutSuffix(pu.Path, "/*"); ok {
		return strings.HasPrefix(u.Path, prefix+"/") && len(u.Path) > len(prefix)+1
	}
	ok, err := path.Match(pu.Path, u.Path)
	return err == nil && ok
}

// RecordedName is name in the form issuance records it (Decision.Names):
// an IP address in Go's canonical text (an IPv4-mapped address as IPv4), a
// URI as given, a mailbox with its domain normalized, a DNS name
// normalized. A name typed by hand to look certificates up goes through
// it, so "Web1.Internal." finds the records of web1.internal.
func RecordedName(name string) string {
	if addr, err := netip.ParseAddr(name); err == nil && addr.Zone() == "" {
		return addr.Unmap().String()
	}
	switch {
	case strings.Contains(name, ":"):
		return name
	case strings.Contains(name, "@"):
		return normalizeEmail(name)
	}
	return NormalizeDNS(name)
}

// normalizeEmail writes the domain of mailbox@domain as NormalizeDNS does;
// the mailbox keeps its case, which is the mail domain's to interpret.
func normalizeEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	if !ok {
		return e
	}
	return local + "@" + NormalizeDNS(domain)
}

// checkEmail allows mailbox@domain only for domains the role lists.
func checkEmail(r *Role, email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || strings.ContainsAny(local, " <>\"") {
		return "not a plain mailbox address"
	}
	domain = NormalizeDNS(domain)
	if why := DomainSyntax(domain); why != "" {
		return "mail domain: " + why
	}
	for _, d := range r.AllowedEmailDomains {
		if NormalizeDNS(d) == domain {
			return ""
		}
	}
	if len(r.AllowedEmailDomains) == 0 {
		return "this role allows no email SANs"
	}
	return "mail domain not allowed (allowed: " + strings.Join(r.AllowedEmailDomains, ", ") + ")"
}

// CheckIdentifier checks one ACME identifier ("dns" or "ip") against r and
// returns "" or why it is refused, naming what the role allows.
func CheckIdentifier(r *Role, typ, value string) string {
	switch typ {
	case "dns":
		if value != NormalizeDNS(value) || strings.HasSuffix(value, ".") {
			return "DNS identifiers must be lower case without a trailing dot"
		}
		return checkDNS(r, value)
	case "ip":
		addr, err := netip.ParseAddr(value)
		if err != nil {
			return "not an IP address"
		}
		return checkAddr(r, addr)
	}
	return "identifier type " + typ + " is not supported (dns, ip)"
}
