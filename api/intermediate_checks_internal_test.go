package api

import (
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pkid/config"
	"pkid/policies"
)

func TestRoleWarnings(t *testing.T) {
	_, v4, _ := net.ParseCIDR("10.0.0.0/8")
	inter := &x509.Certificate{PermittedDNSDomains: []string{"internal"}, PermittedIPRanges: []*net.IPNet{v4}}
	cfg := &config.Config{Roles: map[string]*policies.Role{
		"inside":  {AllowedDomains: []string{"internal", "svc.internal"}, AllowSubdomains: true, AllowedIPRanges: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		"outside": {AllowedDomains: []string{"internal", "localhost"}, AllowSubdomains: true, AllowedIPRanges: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("8.0.0.0/6")}},
	}}
	w := RoleWarnings(cfg, inter)
	if len(w) != 1 || !strings.Contains(w[0], `role "outside" allows domain localhost, ip range 127.0.0.0/8, ip range 8.0.0.0/6,`) {
		t.Fatalf("warnings %q", w) // 8.0.0.0/6 reaches into 10/8 but not wholly
	}
	if w := RoleWarnings(cfg, &x509.Certificate{}); len(w) != 0 {
		t.Fatalf("an unconstrained intermediate: %q", w)
	}
	for p, want := range map[string]string{"10.0.0.0/8": "10.255.255.255", "fd00::/120": "fd00::ff", "1.2.3.4/32": "1.2.3.4"} {
		if got := lastAddr(netip.MustParsePrefix(p)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", p, got, want)
		}
	}
}

// TestRoleRenewalWarning: a role whose renewal.max_age is below its
// default_ttl is named (its certificates are refused renewal at two thirds
// of their life); one with room, or with renewal off, is not.
func TestRoleRenewalWarning(t *testing.T) {
	day := 24 * time.Hour
	cfg := &config.Config{Roles: map[string]*policies.Role{
		"short": {DefaultTTL: day, Renewal: policies.Renewal{Enabled: true, MaxAge: time.Hour}},
		"room":  {DefaultTTL: day, Renewal: policies.Renewal{Enabled: true, MaxAge: 30 * day}},
		"off":   {DefaultTTL: day},
	}}
	w := RoleWarnings(cfg, &x509.Certificate{})
	if len(w) != 1 || !strings.Contains(w[0], `role "short" renews for at most renewal.max_age 1h0m0s after the last authorization, less than its default_ttl 24h0m0s`) {
		t.Fatalf("warnings %q", w)
	}
}

// TestIntermediateValidityWarnings: /healthz warns while the intermediate
// is not valid yet (this clock behind the one that made it: clients refuse
// all it issues) and within 60 days of its end; not in between.
func TestIntermediateValidityWarnings(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	inter := &x509.Certificate{NotBefore: from, NotAfter: from.AddDate(5, 0, 0)}
	for _, tc := range []struct {
		name string
		now  time.Time
		want string
	}{
		{"fail/clock behind the intermediate", from.Add(-5 * time.Minute), "the intermediate is valid only from 2026-01-01T00:00:00Z, and this machine's clock reads 2025-12-31T23:55:00Z"},
		{"ok/valid, far from its end", from.Add(time.Hour), ""},
		{"fail/within 60 days of its end", inter.NotAfter.Add(-30 * 24 * time.Hour), "the intermediate expires at 2031-01-01T00:00:00Z"},
		{"fail/ended", inter.NotAfter, "the intermediate expired at 2031-01-01T00:00:00Z: nothing is issued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := IntermediateValidityWarnings(inter, tc.now)
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
