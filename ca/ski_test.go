package ca

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"go.step.sm/crypto/x509util"
)

// TestSubjectKeyID: the SKI read from a CSR's SubjectPublicKeyInfo is RFC
// 5280 method 1, as x509util computes it from the parsed key, for every
// key type; a malformed SubjectPublicKeyInfo is an error.
func TestSubjectKeyID(t *testing.T) {
	for _, kt := range []string{"ec-p256", "ec-p384", "ed25519", "rsa-2048"} {
		key, err := GenerateKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.internal"}}, key)
		csr, _ := x509.ParseCertificateRequest(der)
		got, err := subjectKeyID(csr)
		want, _ := x509util.GenerateSubjectKeyID(key.Public())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %x %v, want %x", kt, got, err, want)
		}
	}
	bad := &x509.CertificateRequest{RawSubjectPublicKeyInfo: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}
	if _, err := subjectKeyID(bad); err == nil {
		t.Fatal("malformed SubjectPublicKeyInfo accepted")
	}
}
