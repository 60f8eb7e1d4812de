package pkidclient

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
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
