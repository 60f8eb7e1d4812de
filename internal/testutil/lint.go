package testutil

import (
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// excludedLints are RFC 5280-sourced lints switched off one by one, each
// with the reason it does not apply to pkid.
var excludedLints = map[string]string{
	"e_ext_san_uri_host_not_fqdn_or_ip": "SPIFFE IDs (spiffe://trust-domain/path) carry a trust domain where RFC 5280 expects a host; " +
		"the SPIFFE spec allows a single-label trust domain such as the default role's spiffe://internal, which is not an FQDN",
}

var registry = func() lint.Registry {
	names := make([]string, 0, len(excludedLints))
	for n := range excludedLints {
		names = append(names, n)
	}
	r, err := lint.GlobalRegistry().Filter(lint.FilterOptions{
		IncludeSources: lint.SourceList{lint.RFC5280},
		ExcludeNames:   names,
	})
	if err != nil {
		panic(err)
	}
	return r
}()

// LintRegistrySize is how many RFC 5280 certificate lints the registry
// holds; tests assert it so a silently emptied registry cannot pass.
func LintRegistrySize() int { return len(registry.Names()) }

// LintCertificate runs the RFC 5280 lints on der and fails t on any error
// or fatal result. It returns how many lints applied (pass, warn, error).
func LintCertificate(t testing.TB, der []byte) int {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("zcrypto cannot parse the certificate: %v", err)
	}
	rs := zlint.LintCertificateEx(c, registry)
	applied := 0
	for name, r := range rs.Results {
		switch r.Status {
		case lint.Error, lint.Fatal:
			t.Errorf("zlint %s: %s %s", name, r.Status, r.Details)
		case lint.Warn:
			t.Logf("zlint warning %s: %s", name, r.Details)
			applied++
		case lint.Pass:
			applied++
		}
	}
	return applied
}

// LintCRL runs the RFC 5280 CRL lints and fails t on error or fatal.
func LintCRL(t testing.TB, der []byte) int {
	t.Helper()
	c, err := zx509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("zcrypto cannot parse the CRL: %v", err)
	}
	rs := zlint.LintRevocationListEx(c, registry)
	applied := 0
	for name, r := range rs.Results {
		switch r.Status {
		case lint.Error, lint.Fatal:
			t.Errorf("zlint %s: %s %s", name, r.Status, r.Details)
		case lint.Pass, lint.Warn:
			applied++
		}
	}
	return applied
}
