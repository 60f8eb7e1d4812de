package ca

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"

	"pkid/errs"
)

// newSerial returns 128 random bits as a positive integer: 16 octets of
// entropy, at most 17 DER octets with the sign byte, under RFC 5280's 20.
func newSerial() (*big.Int, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	n := new(big.Int).SetBytes(b[:])
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n, nil
}

// SerialString is the canonical text of a serial: lowercase hex, no
// leading zeros or colons.
func SerialString(n *big.Int) string { return fmt.Sprintf("%x", n) }

// NormalizeSerial accepts upper case, colons and leading zeros and returns
// the canonical form.
func NormalizeSerial(s string) (string, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 || len(s) == 0 {
		return "", errs.New(errs.Malformed, "serial %q is not a positive hexadecimal number", s)
	}
	return SerialString(n), nil
}
