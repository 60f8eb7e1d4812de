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
		want           []string // what the one warning names; none for nil
	}{
		{"ok/where serve publishes it", "http://pki.internal", []string{"http://pki.internal/v1/ca/root.crl"}, nil},
		{"ok/pointers_url with a trailing slash", "http://pki.internal/", []string{"http://pki.internal/v1/ca/root.crl"}, nil},
		{"ok/no CRL DP (made before init set one)", "http://pki.internal", nil, nil},
		{"fail/pointers_url edited since init", "http://pki.internal", []string{"http://127.0.0.1:8080/v1/ca/root.crl"}, []string{"http://127.0.0.1:8080/v1/ca/root.crl", "http://pki.internal/v1/ca/root.crl"}},
		{"fail/https pointers_url", "https://pki.internal", []string{"https://pki.internal/v1/ca/root.crl"}, []string{"pointers_url https://pki.internal is https", "nginx's OCSP stapling"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := PointerWarnings(&x509.Certificate{CRLDistributionPoints: tc.dps}, tc.pointers)
			if tc.want == nil && len(w) != 0 || tc.want != nil && len(w) != 1 {
				t.Fatalf("warnings %q, want one naming %q", w, tc.want)
			}
			for _, s := range tc.want {
				if !strings.Contains(w[0], s) {
					t.Fatalf("warning %q does not name %q", w[0], s)
				}
			}
		})
	}
}
