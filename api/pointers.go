package api

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// RootCRLPath is where serve publishes the root's CRL, on http_listen; an
// intermediate made by pkid init points there ({pointers_url}/v1/ca/root.crl).
const RootCRLPath = "/v1/ca/root.crl"

// RootCRLURL is the root CRL's address under pointersURL: the CRL DP init
// writes into the intermediate, and where serve publishes that CRL.
func RootCRLURL(pointersURL string) string {
	return strings.TrimSuffix(pointersURL, "/") + RootCRLPath
}

// PointerWarnings says when the intermediate's CRL DP, fixed when init
// signed it, is not where serve now publishes the root's CRL: pointers_url
// was edited since. A relying party that checks the intermediate (Java's
// PKIX with revocation checking on) asks the old address and, finding
// nothing there, refuses every chain. An intermediate without a CRL DP
// (made before init set one) gets no warning: nothing can be done about
// it short of a new hierarchy, and it was always so.
//
// It also warns of an https pointers_url: leaves then send relying parties
// to OCSP and CRLs over TLS, which nginx's OCSP stapling refuses ("invalid
// URL prefix") as do many CRL fetchers, and which is circular when the TLS
// certificate is this CA's own (RFC 5280 §4.2.1.13 and §4.2.2.1 expect http).
func PointerWarnings(inter *x509.Certificate, pointersURL string) []string {
	var out []string
	if strings.HasPrefix(strings.ToLower(pointersURL), "https:") {
		out = append(out, fmt.Sprintf("pointers_url %s is https: leaves point relying parties to OCSP and CRLs over TLS, which nginx's OCSP stapling and many CRL fetchers do not speak, and which needs a TLS certificate they already trust; serve http_listen at an http:// URL and name that", pointersURL))
	}
	want := RootCRLURL(pointersURL)
	if len(inter.CRLDistributionPoints) == 0 || slices.Contains(inter.CRLDistributionPoints, want) {
		return out
	}
	return append(out, fmt.Sprintf("the intermediate's CRL distribution point is %s, not %s (pointers_url changed since pkid init): relying parties that check the intermediate's revocation fetch the root's CRL from there; serve it at that address too, or make a new CA hierarchy with pkid init --pointers-url",
		strings.Join(inter.CRLDistributionPoints, ", "), want))
}
