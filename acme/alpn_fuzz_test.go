package acme

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// FuzzALPNCert hands checkALPNCert a certificate with an arbitrary
// acmeIdentifier extension and SAN, as a tls-alpn-01 responder (anyone
// who can answer on the identifier's address) may present: it must never
// panic, and it accepts only exactly one critical OCTET STRING holding
// SHA-256 of the key authorization, on a certificate naming only the
// identifier.
func FuzzALPNCert(f *testing.F) {
	const keyAuth = "tok.thumb"
	sum := sha256.Sum256([]byte(keyAuth))
	good, _ := asn1.Marshal(sum[:])
	f.Add(good, true, "a.internal")
	f.Add(good, false, "a.internal")
	f.Add(good, true, "b.internal")
	f.Add(append(append([]byte{}, good...), 0), true, "a.internal")
	f.Add([]byte{0x04, 0x81, 0x20}, true, "a.internal")
	f.Add([]byte{0x0c, 0x20}, true, "a.internal")
	f.Add([]byte{}, true, "a.internal")
	f.Fuzz(func(t *testing.T, ext []byte, critical bool, san string) {
		cert := &x509.Certificate{DNSNames: []string{san}, Extensions: []pkix.Extension{{Id: oidACMEIdentifier, Critical: critical, Value: ext}}}
		st := tls.ConnectionState{NegotiatedProtocol: "acme-tls/1", PeerCertificates: []*x509.Certificate{cert}}
		err := checkALPNCert(st, Challenge{Type: "tls-alpn-01", Identifier: Ident{Type: "dns", Value: "a.internal"}, KeyAuth: keyAuth})
		if want := critical && san == "a.internal" && bytes.Equal(ext, good); (err == nil) != want {
			t.Fatalf("accepted=%v, want %v: ext %x critical %v san %q: %v", err == nil, want, ext, critical, san, err)
		}
	})
}
