package policies

import (
	"strings"
	"testing"
)

func TestCheckBoundNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
		want  string // "" for allowed
	}{
		{"ok/dns", []string{"svc.internal"}, ""},
		{"ok/dns, ip and a SPIFFE ID", []string{"svc.internal", "127.0.0.2", "spiffe://internal/ns/Prod"}, ""},
		{"fail/dns outside the role", []string{"svc.internal", "svc.example.com"}, `dns "svc.example.com": not within the domains`},
		{"fail/ip outside the role", []string{"10.0.0.1"}, `ip "10.0.0.1": outside the IP ranges`},
		{"fail/uri outside the role", []string{"spiffe://other/x"}, `uri "spiffe://other/x"`},
		{"fail/two SPIFFE IDs", []string{"spiffe://internal/a", "spiffe://internal/b"}, "exactly one URI SAN"},
		{"fail/not a URI", []string{"spiffe://internal/%zz"}, `uri "spiffe://internal/%zz": not a URI`},
		{"fail/email the role does not list", []string{"ops@internal"}, `email "ops@internal"`},
		{"fail/nothing", nil, "no names requested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckBoundNames(testRole(), tc.names)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "key ") {
				t.Fatalf("got %v, want %q (and nothing about the key)", err, tc.want)
			}
		})
	}
}
