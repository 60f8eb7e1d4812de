package ca

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"
	"time"

	"pkid/errs"
	"pkid/store"
)

// newSerial returns store.TimePrefix then 128 random bits (the contract's
// CSPRNG part): 20 octets with the top bit clear, so positive and within
// RFC 5280's limit.
func newSerial(now time.Time) (*big.Int, error) {
	var b [20]byte
	binary.BigEndian.PutUint32(b[:4], store.TimePrefix(now))
	if _, err := rand.Read(b[4:]); err != nil {
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
