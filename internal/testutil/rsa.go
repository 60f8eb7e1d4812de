package testutil

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"testing"
)

// WithRSAModulus returns the DER CSR csr with its public key replaced by an
// RSA key of the given size, for the refusal of keys too large to check (its
// signature no longer matches).
func WithRSAModulus(t testing.TB, csr []byte, bits int) []byte {
	t.Helper()
	var outer struct {
		TBS struct {
			Raw     asn1.RawContent
			Version int
			Subject asn1.RawValue
			Key     asn1.RawValue
			Attrs   asn1.RawValue `asn1:"optional,tag:0"`
		}
		Alg asn1.RawValue
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(csr, &outer); err != nil {
		t.Fatal(err)
	}
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	spki, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n.Add(n, big.NewInt(1)), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	outer.TBS.Raw, outer.TBS.Key = nil, asn1.RawValue{FullBytes: spki}
	tbs, err := asn1.Marshal(outer.TBS)
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, outer.Alg, outer.Sig})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
