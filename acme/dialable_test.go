package acme

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckDialable(t *testing.T) {
	for addr, refused := range map[string]string{
		"127.0.0.1":              "",
		"10.1.2.3":               "",
		"192.168.0.10":           "",
		"fd00:ec2::254":          "", // a ULA: internal networks use them
		"::1":                    "",
		"169.254.169.254":        "link-local",
		"::ffff:169.254.169.254": "link-local",
		"fe80::1":                "link-local",
		"0.0.0.0":                "unspecified",
		"::":                     "unspecified",
		"224.0.0.1":              "multicast",
		"ff02::1":                "multicast",
		"255.255.255.255":        "broadcast",
	} {
		err := checkDialable("h.internal", netip.MustParseAddr(addr))
		if refused == "" {
			if err != nil {
				t.Errorf("%s refused: %v", addr, err)
			}
			continue
		}
		p, ok := err.(*Problem)
		if !ok || p.Type != ns+"connection" || !strings.Contains(p.Detail, refused) || !strings.Contains(p.Detail, "h.internal resolves to") {
			t.Errorf("%s: %v, want a connection problem naming %s", addr, err, refused)
		}
	}
}
