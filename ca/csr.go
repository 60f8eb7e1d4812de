package ca

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"net/netip"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"pkid/errs"
	"pkid/policies"
)

// maxCSRBytes bounds a CSR's PEM; real CSRs are a few KB even with RSA-4096.
const maxCSRBytes = 32 << 10

// ParseCSR decodes one PEM CERTIFICATE REQUEST and verifies its signature,
// so the requester proves possession of the key.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	if len(pemBytes) > maxCSRBytes {
		return nil, errs.New(errs.BadCSR, "CSR is larger than %d bytes", maxCSRBytes)
	}
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, errs.New(errs.BadCSR, "csr is not PEM: want a -----BEGIN CERTIFICATE REQUEST----- block")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, errs.New(errs.BadCSR, "csr PEM block is %q, want \"CERTIFICATE REQUEST\"", block.Type)
	}
	if len(pemBytesTrim(rest)) > 0 {
		return nil, errs.New(errs.BadCSR, "csr holds data after the CERTIFICATE REQUEST block; send exactly one")
	}
	return ParseCSRDER(block.Bytes)
}

func pemBytesTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// ParseCSRDER parses DER (as ACME sends it) and verifies the signature.
func ParseCSRDER(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, errs.Wrap(errs.BadCSR, err, "csr does not parse as PKCS#10: %v", err)
	}
	// The cost of checking an RSA signature grows with the square of the
	// modulus: a 32 KB CSR can carry a 190,000-bit key that takes a core
	// 0.2 s to refuse. No role allows more than rsa-4096, so a larger key
	// is refused before its signature is checked, as policy would refuse
	// it after (403: a key no role allows).
	if pub, ok := csr.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() > maxRSABits {
		kt, why := policies.KeyTypeOf(pub)
		return nil, errs.New(errs.Forbidden, "key %s: %s", kt, why)
	}
	if err := checkSANTypes(csr); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errs.Wrap(errs.BadCSR, err, "csr signature does not verify: %v", err)
	}
	return csr, nil
}

// oidSAN is the subjectAltName extension.
var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// unissuedSANTypes are the GeneralName choices (RFC 5280 §4.2.1.6) that
// x509 skips when it parses a CSR, by their context tag.
var unissuedSANTypes = map[uint8]string{0: "otherName", 3: "x400Address", 4: "directoryName", 5: "ediPartyName", 8: "registeredID"}

// checkSANTypes refuses a CSR that asks for a subject alternative name of
// a type pkid never issues (a UPN otherName, a directoryName): x509 skips
// them, so the certificate would silently lack a name the requester asked
// for and may rely on. pkid issues DNS, IP, URI and email names only.
func checkSANTypes(csr *x509.CertificateRequest) error {
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidSAN) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) {
			return errs.New(errs.BadCSR, "csr subjectAltName is not a SEQUENCE of names")
		}
		for !names.Empty() {
			var name cryptobyte.String
			var tag cbasn1.Tag
			if !names.ReadAnyASN1(&name, &tag) {
				return errs.New(errs.BadCSR, "csr subjectAltName holds a name that does not parse")
			}
			typ, ok := unissuedSANTypes[uint8(tag)&0x1f]
			if !ok || uint8(tag)&0xc0 != 0x80 {
				continue
			}
			var oid asn1.ObjectIdentifier
			if typ == "otherName" && name.ReadASN1ObjectIdentifier(&oid) {
				typ += " " + oid.String()
			}
			return errs.New(errs.BadCSR, "csr asks for a subject alternative name of type %s, which pkid does not issue (only DNS, IP, URI and email names); leave it out", typ)
		}
	}
	return nil
}

// maxRSABits is the largest RSA key of any key type pkid knows (rsa-4096).
const maxRSABits = 4096

// RequestFromCSR turns a verified CSR into a policy request. Only names and
// the key are taken; every extension the CSR asks for is ignored.
func RequestFromCSR(csr *x509.CertificateRequest) *policies.Request {
	r := &policies.Request{
		CommonName: csr.Subject.CommonName,
		DNSNames:   csr.DNSNames,
		URIs:       csr.URIs,
		Emails:     csr.EmailAddresses,
		PublicKey:  csr.PublicKey,
	}
	for _, ip := range csr.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			r.IPAddresses = append(r.IPAddresses, a)
		}
	}
	return r
}
