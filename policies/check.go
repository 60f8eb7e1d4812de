package policies

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"time"
)

// Backdate is how far notBefore is set before "now" to absorb clock skew
// between the CA and relying parties.
const Backdate = time.Minute

// reservedExtensions may only be produced by x509 from typed fields that
// CheckCertificate inspects; a template smuggling them in as raw extensions
// (CA:true, a name outside policy, name constraints) is refused.
var reservedExtensions = []asn1.ObjectIdentifier{
	{2, 5, 29, 17}, // subjectAltName
	{2, 5, 29, 19}, // basicConstraints
	{2, 5, 29, 15}, // keyUsage
	{2, 5, 29, 37}, // extKeyUsage
	{2, 5, 29, 30}, // nameConstraints
	{2, 5, 29, 36}, // policyConstraints
	{2, 5, 29, 54}, // inhibitAnyPolicy
}

// CheckCertificate is the last gate before signing: whatever produced tmpl
// (the built-in layout or a role's template), it must be a leaf, carry only
// names, usages and a lifetime that role r allows.
func CheckCertificate(r *Role, tmpl *x509.Certificate) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("certificate template for role %q: "+format, append([]any{r.Name}, args...)...)
	}
	if tmpl.IsCA || tmpl.MaxPathLen > 0 || tmpl.MaxPathLenZero {
		return fail("would be a CA")
	}
	if tmpl.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return fail("asks for certSign or cRLSign key usage")
	}
	_, allowed := Usages(r, tmpl.PublicKey)
	for _, e := range tmpl.ExtKeyUsage {
		if !slices.Contains(allowed, e) {
			return fail("extended key usage %d is not among the role's", e)
		}
	}
	if len(tmpl.UnknownExtKeyUsage) > 0 {
		return fail("carries extended key usages unknown to the role")
	}
	if len(tmpl.PermittedDNSDomains)+len(tmpl.ExcludedDNSDomains)+len(tmpl.PermittedIPRanges)+
		len(tmpl.ExcludedIPRanges)+len(tmpl.PermittedEmailAddresses)+len(tmpl.ExcludedEmailAddresses)+
		len(tmpl.PermittedURIDomains)+len(tmpl.ExcludedURIDomains) > 0 {
		return fail("carries name constraints")
	}
	for _, ext := range tmpl.ExtraExtensions {
		for _, oid := range reservedExtensions {
			if ext.Id.Equal(oid) {
				return fail("sets extension %s directly", ext.Id)
			}
		}
	}
	if len(tmpl.DNSNames)+len(tmpl.IPAddresses)+len(tmpl.URIs)+len(tmpl.EmailAddresses) == 0 {
		return fail("has no subject alternative names")
	}
	for _, n := range tmpl.DNSNames {
		if n != NormalizeDNS(n) {
			return fail("DNS name %q is not normalized", n)
		}
		if why := checkDNS(r, n); why != "" {
			return fail("DNS name %q: %s", n, why)
		}
	}
	for _, ip := range tmpl.IPAddresses {
		if why := checkIP(r, ip); why != "" {
			return fail("IP %s: %s", ip, why)
		}
	}
	for _, u := range tmpl.URIs {
		if why := checkURI(r, u); why != "" {
			return fail("URI %s: %s", u, why)
		}
	}
	if why := oneSPIFFEID(tmpl.URIs); why != "" {
		return fail("%s", why)
	}
	for _, e := range tmpl.EmailAddresses {
		if why := checkEmail(r, e); why != "" {
			return fail("email %s: %s", e, why)
		}
	}
	if tmpl.NotBefore.IsZero() || !tmpl.NotAfter.After(tmpl.NotBefore) {
		return fail("has no valid validity period")
	}
	if life := tmpl.NotAfter.Sub(tmpl.NotBefore); life > r.MaxTTL+Backdate {
		return fail("lifetime %s exceeds max_ttl %s", life, r.MaxTTL)
	}
	if cn := tmpl.Subject.CommonName; len(cn) > MaxCNLength {
		return fail("common name longer than %d characters", MaxCNLength)
	}
	return nil
}
