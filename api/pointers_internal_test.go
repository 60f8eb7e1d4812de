package api

import (
	"crypto/x509"
	"strings"
	"testing"
)

func TestPointerWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, pointers string
		dps            []string
		warn           bool
	}{
		{"ok/where serve publishes it", "http://pki.internal", []string{"http://pki.internal/v1/ca/root.crl"}, false},
		{"ok/pointers_url with a trailing slash", "http://pki.internal/", []string{"http://pki.internal/v1/ca/root.crl"}, false},
		{"ok/no CRL DP (made before init set one)", "http://pki.internal", nil, false},
		{"fail/pointers_url edited since init", "http://pki.internal", []string{"http://127.0.0.1:8080/v1/ca/root.crl"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := PointerWarnings(&x509.Certificate{CRLDistributionPoints: tc.dps}, tc.pointers)
			if (len(w) > 0) != tc.warn {
				t.Fatalf("warnings %q, want some: %v", w, tc.warn)
			}
			if tc.warn && (!strings.Contains(w[0], tc.dps[0]) || !strings.Contains(w[0], "http://pki.internal/v1/ca/root.crl")) {
				t.Fatalf("the warning names neither address: %q", w[0])
			}
		})
	}
}
