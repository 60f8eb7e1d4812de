package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"
)

// GenerateKey makes a key of a config key type (ec-p256, ec-p384, ed25519,
// rsa-2048, rsa-3072, rsa-4096).
func GenerateKey(keyType string) (crypto.Signer, error) {
	var s crypto.Signer
	var err error
	switch keyType {
	case "ec-p256", "":
		s, err = keyutil.GenerateSigner("EC", "P-256", 0)
	case "ec-p384":
		s, err = keyutil.GenerateSigner("EC", "P-384", 0)
	case "ed25519":
		s, err = keyutil.GenerateSigner("OKP", "Ed25519", 0)
	case "rsa-2048", "rsa-3072", "rsa-4096":
		var bits int
		fmt.Sscanf(strings.TrimPrefix(keyType, "rsa-"), "%d", &bits)
		s, err = keyutil.GenerateSigner("RSA", "", bits)
	default:
		return nil, fmt.Errorf("unknown key type %q (want ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096)", keyType)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", keyType, err)
	}
	return s, nil
}

// EncryptKey returns key as encrypted PKCS#8 PEM. An empty password is
// refused: pemutil would silently write the key in the clear.
func EncryptKey(key crypto.Signer, password []byte) ([]byte, error) {
	if len(bytes.TrimSpace(password)) == 0 {
		return nil, errors.New("encrypt key: empty password")
	}
	block, err := pemutil.Serialize(key, pemutil.WithPassword(password), pemutil.WithPKCS8(true))
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// MarshalKey returns key as unencrypted PKCS#8 PEM, for keys handed to a
// client (server-side generation) or written to a client's 0600 file.
func MarshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadKey reads an encrypted PKCS#8 key file with the password in
// passwordFile (trailing newline ignored).
func LoadKey(keyFile, passwordFile string) (crypto.Signer, error) {
	pw, err := os.ReadFile(passwordFile)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return DecryptKey(raw, bytes.TrimRight(pw, "\r\n"))
}

// DecryptKey parses encrypted PKCS#8 PEM.
func DecryptKey(raw, password []byte) (crypto.Signer, error) {
	k, err := pemutil.ParseKey(raw, pemutil.WithPassword(password))
	if err != nil {
		return nil, fmt.Errorf("decrypt key (wrong password?): %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("decrypt key: %T is not a signing key", k)
	}
	return s, nil
}

// LoadCertificate reads the first certificate of a PEM file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	c, err := pemutil.ParseCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %s: %w", path, err)
	}
	return c, nil
}

// PEMCert encodes DER as a CERTIFICATE PEM block.
func PEMCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// standIn is a public key of keyType for policy checks made before the
// real key exists; only its type and size are ever looked at.
func standIn(keyType string) crypto.PublicKey {
	switch keyType {
	case "ec-p384":
		return &ecdsa.PublicKey{Curve: elliptic.P384()}
	case "ed25519":
		return make(ed25519.PublicKey, ed25519.PublicKeySize)
	case "rsa-2048", "rsa-3072", "rsa-4096":
		var bits int
		fmt.Sscanf(strings.TrimPrefix(keyType, "rsa-"), "%d", &bits)
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return &rsa.PublicKey{N: n.Add(n, big.NewInt(1)), E: 65537}
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256()}
}

// publicKeyAlgorithm is what x509.ParseCertificateRequest would report for
// pub, for requests the CA builds around keys it made.
func publicKeyAlgorithm(pub crypto.PublicKey) x509.PublicKeyAlgorithm {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return x509.ECDSA
	case *rsa.PublicKey:
		return x509.RSA
	case ed25519.PublicKey:
		return x509.Ed25519
	}
	return x509.UnknownPublicKeyAlgorithm
}

// subjectKeyID is RFC 5280 §4.2.1.2 method 1 (SHA-1 of the subjectPublicKey
// bits), taken straight from the CSR's SubjectPublicKeyInfo rather than
// re-marshalling the parsed key.
func subjectKeyID(csr *x509.CertificateRequest) ([]byte, error) {
	if csr == nil {
		return nil, errors.New("no CSR")
	}
	if len(csr.RawSubjectPublicKeyInfo) == 0 {
		return x509util.GenerateSubjectKeyID(csr.PublicKey)
	}
	// SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
	in := cryptobyte.String(csr.RawSubjectPublicKeyInfo)
	var spki cryptobyte.String
	var key asn1.BitString
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() || !spki.SkipASN1(cbasn1.SEQUENCE) || !spki.ReadASN1BitString(&key) || !spki.Empty() {
		return nil, errors.New("subjectPublicKeyInfo is not SEQUENCE { AlgorithmIdentifier, BIT STRING }")
	}
	sum := sha1.Sum(key.Bytes) //nolint:gosec // RFC 5280 key identifier, not a security hash
	return sum[:], nil
}
