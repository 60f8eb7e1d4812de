package api

import (
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"testing"

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
