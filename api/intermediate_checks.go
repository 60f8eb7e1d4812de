package api

import (
	"crypto/x509"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"pkid/ca"
	"pkid/config"
	"pkid/policies"
)

// intermediateWarnBefore is how long before the intermediate's notAfter
// /healthz starts warning: time to make and roll out a new hierarchy.
const intermediateWarnBefore = 60 * 24 * time.Hour

// IntermediateValidityWarnings says what /healthz warns about the
// intermediate's validity at now: that it is not valid yet (this machine's
// clock is behind the one that made it, by more than the minute init
// backdates it: every client refuses what it issues until then), or that
// it ends within intermediateWarnBefore, or that it has ended.
func IntermediateValidityWarnings(inter *x509.Certificate, now time.Time) []string {
	if why := ca.IntermediateExpired(inter, now); why != "" {
		return []string{why}
	}
	switch {
	case now.Before(inter.NotBefore):
		return []string{fmt.Sprintf("the intermediate is valid only from %s, and this machine's clock reads %s: clients refuse every certificate it issues until then; set this clock right (NTP)", inter.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
	case inter.NotAfter.Sub(now) < intermediateWarnBefore:
		return []string{fmt.Sprintf("the intermediate expires at %s: certificates end then at the latest and nothing is issued after; replace it before with pkid ca rotate-intermediate (its certificates stay checkable and renewable)", inter.NotAfter.UTC().Format(time.RFC3339))}
	}
	return nil
}

// ServerNamesOutside says which of the config's tls names the
// intermediate's name constraints do not allow, or "" if none: serve could
// not issue its own certificate (pkid config check says so beforehand).
func ServerNamesOutside(cfg *config.Config, inter *x509.Certificate) string {
	if why := policies.NamesOutside(inter, cfg.TLS.DNSNames, nil); why != "" {
		return "tls.dns_names: " + why
	}
	if why := policies.NamesOutside(inter, nil, cfg.TLS.IPAddresses); why != "" {
		return "tls.ip_addresses: " + why
	}
	return ""
}

// RoleWarnings names what roles allow that the intermediate's name
// constraints do not: such requests are refused at issuance (403, or
// rejectedIdentifier at newOrder), so a role that names them promises
// more than the CA can sign. An IP range warns when either end is outside.
// It also names roles whose renewal.max_age is shorter than a certificate's
// default lifetime, which makes renewal useless.
func RoleWarnings(cfg *config.Config, inter *x509.Certificate) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Roles)) {
		r := cfg.Roles[name]
		var outside []string
		for _, d := range r.AllowedDomains {
			probe := d
			if !r.AllowBareDomains {
				probe = "x." + d // subdomains are what the role allows
			}
			if policies.OutsideConstraint(inter, "dns", probe) != "" {
				outside = append(outside, "domain "+d)
			}
		}
		for _, p := range r.AllowedIPRanges {
			if policies.OutsideConstraint(inter, "ip", p.Masked().Addr().String()) != "" || policies.OutsideConstraint(inter, "ip", lastAddr(p).String()) != "" {
				outside = append(outside, "ip range "+p.String())
			}
		}
		if len(outside) > 0 {
			out = append(out, fmt.Sprintf("role %q allows %s, outside the intermediate's name constraints: such names are refused at issuance", name, strings.Join(outside, ", ")))
		}
		if r.Renewal.Enabled && r.Renewal.MaxAge < r.DefaultTTL {
			out = append(out, fmt.Sprintf("role %q renews for at most renewal.max_age %s after the last authorization, less than its default_ttl %s: a certificate renewed at two thirds of its life is refused, so renewal never saves a token; raise max_age to several lifetimes (or turn renewal off)", name, r.Renewal.MaxAge, r.DefaultTTL))
		}
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(a)
	return last
}
