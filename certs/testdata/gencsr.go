//go:build ignore

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
)

func main() {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w := func(name string, tmpl *x509.CertificateRequest) {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
		if err != nil {
			panic(err)
		}
		os.WriteFile("certs/testdata/csr/"+name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644)
	}
	w("ok-svc", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "svc.internal"}, DNSNames: []string{"svc.internal"}})
	w("cn-only", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "svc.internal"}})
	w("outside", &x509.CertificateRequest{DNSNames: []string{"evil.internal.attacker.com"}})
	w("wildcard", &x509.CertificateRequest{DNSNames: []string{"*.internal"}})
	bc, _ := asn1.Marshal(struct{ IsCA bool }{true})
	w("ca-true", &x509.CertificateRequest{DNSNames: []string{"x.internal"}, ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}}})
	os.WriteFile("certs/testdata/csr/garbage.pem", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), 0o644)
}
