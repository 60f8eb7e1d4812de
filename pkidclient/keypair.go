package pkidclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// LoadKeyPair is tls.LoadX509KeyPair, with a useful error for the common
// mistake of a chain file in the wrong order (intermediate first): Go
// says only "private key does not match public key", and the key does
// match the certificate further down. pkid writes the leaf first.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		return pair, nil
	}
	certPEM, rerr := os.ReadFile(certFile)
	keyPEM, kerr := os.ReadFile(keyFile)
	if rerr != nil || kerr != nil {
		return pair, err
	}
	// Each certificate alone: the one that pairs with the key, if any.
	i := 0
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		i++
		c, perr := x509.ParseCertificate(b.Bytes)
		if perr != nil || i == 1 {
			continue
		}
		if _, lerr := tls.X509KeyPair(pem.EncodeToMemory(b), keyPEM); lerr == nil {
			return pair, fmt.Errorf("%s: the certificate for the key in %s is number %d (%q), not the first: put the leaf first, then its intermediate", certFile, keyFile, i, c.Subject.CommonName)
		}
	}
	return pair, err
}

// MarshalKeyLike encodes key, a renewal's new key, in the PEM form of the
// key file it replaces (old, its contents): SEC1 "EC PRIVATE KEY" (what
// `openssl ecparam -genkey` writes), PKCS#1 "RSA PRIVATE KEY", or PKCS#8
// "PRIVATE KEY" (what pkid writes, and the form for anything else), so a
// service whose loader takes only the form it was deployed with keeps
// loading its key after a renewal.
func MarshalKeyLike(key crypto.Signer, old []byte) ([]byte, error) {
	var form string
	for rest := old; form == ""; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			form = b.Type
		}
	}
	var block *pem.Block
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if form == "EC PRIVATE KEY" {
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				return nil, fmt.Errorf("marshal key: %w", err)
			}
			block = &pem.Block{Type: form, Bytes: der}
		}
	case *rsa.PrivateKey:
		if form == "RSA PRIVATE KEY" {
			block = &pem.Block{Type: form, Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	}
	if block == nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("marshal key: %w", err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(block), nil
}
