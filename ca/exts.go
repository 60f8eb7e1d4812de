package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// fixedOIDs are the extensions every leaf of one kind shares byte for byte:
// key usage, extended key usage, basic constraints, authority key ID and
// the pointers (AIA, CRL distribution points).
var fixedOIDs = []asn1.ObjectIdentifier{
	{2, 5, 29, 15},              // keyUsage
	{2, 5, 29, 37},              // extKeyUsage
	{2, 5, 29, 19},              // basicConstraints
	{2, 5, 29, 35},              // authorityKeyIdentifier
	{1, 3, 6, 1, 5, 5, 7, 1, 1}, // authorityInfoAccess
	{2, 5, 29, 31},              // cRLDistributionPoints
}

// extKey names one kind of leaf: what decides the fixed extensions' bytes.
type extKey struct {
	ku       x509.KeyUsage
	eku      uint64 // bit i set: x509.ExtKeyUsage(i)
	pointers bool
}

// extCache holds, per kind of leaf, the fixed extensions as crypto/x509
// encoded them once. Signing then hands them over as ExtraExtensions (which
// crypto/x509 copies instead of re-encoding the template's fields through
// reflection): the same bytes, without the per-certificate marshalling.
type extCache struct {
	mu sync.Mutex
	m  map[extKey][]pkix.Extension
}

// withFixedExtensions moves tmpl's fixed extensions into ExtraExtensions,
// encoded once per kind. Templates it cannot vouch for (extensions of
// their own, unknown or out-of-range EKUs, CA certificates) are left as
// they are, for crypto/x509 to encode.
func (a *Authority) withFixedExtensions(tmpl *x509.Certificate) error {
	if len(tmpl.ExtraExtensions) > 0 || len(tmpl.UnknownExtKeyUsage) > 0 || tmpl.IsCA || !tmpl.BasicConstraintsValid {
		return nil
	}
	k := extKey{ku: tmpl.KeyUsage, pointers: len(tmpl.CRLDistributionPoints) > 0}
	for _, u := range tmpl.ExtKeyUsage {
		if u < 0 || u >= 64 {
			return nil
		}
		k.eku |= 1 << u
	}
	if k.pointers && (!equalStrings(tmpl.CRLDistributionPoints, a.crlURL) || !equalStrings(tmpl.OCSPServer, a.ocspURL) || !equalStrings(tmpl.IssuingCertificateURL, a.aiaURL)) {
		return nil
	}
	if !k.pointers && (len(tmpl.OCSPServer) > 0 || len(tmpl.IssuingCertificateURL) > 0) {
		return nil
	}
	a.exts.mu.Lock()
	exts, ok := a.exts.m[k]
	a.exts.mu.Unlock()
	if !ok {
		var err error
		if exts, err = a.encodeFixed(tmpl); err != nil {
			return err
		}
		a.exts.mu.Lock()
		if a.exts.m == nil {
			a.exts.m = map[extKey][]pkix.Extension{}
		}
		a.exts.m[k] = exts
		a.exts.mu.Unlock()
	}
	tmpl.ExtraExtensions = exts
	return nil
}

// encodeFixed lets crypto/x509 encode tmpl's fixed extensions once, in a
// probe certificate under the intermediate's name, signed by a throwaway
// key; only the extensions are kept.
func (a *Authority) encodeFixed(tmpl *x509.Certificate) ([]pkix.Extension, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("encode extensions: %w", err)
	}
	probe := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1, 0),
		KeyUsage: tmpl.KeyUsage, ExtKeyUsage: tmpl.ExtKeyUsage,
		BasicConstraintsValid: true,
		CRLDistributionPoints: tmpl.CRLDistributionPoints, OCSPServer: tmpl.OCSPServer, IssuingCertificateURL: tmpl.IssuingCertificateURL,
	}
	// The intermediate's name and key ID, but not its key: nothing the CA
	// key signs leaves out of the records, even a probe.
	parent := *a.d.Intermediate
	parent.PublicKey = nil
	der, err := x509.CreateCertificate(rand.Reader, probe, &parent, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("encode extensions: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("encode extensions: %w", err)
	}
	var out []pkix.Extension
	for _, e := range c.Extensions {
		for _, oid := range fixedOIDs {
			if e.Id.Equal(oid) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func equalStrings(got []string, want string) bool {
	return len(got) == 1 && got[0] == want
}
