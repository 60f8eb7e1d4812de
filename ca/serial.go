package ca

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"
	"time"

	"pkid/errs"
)

// newSerial returns 128 random bits (the contract's CSPRNG part) behind 31
// bits of the clock: the milliseconds since 1970 modulo 2^31, which wrap
// every 24.8 days. That is 20 octets with the top bit clear, so positive
// and within RFC 5280's limit. Uniqueness rests on the random bits; the
// prefix only makes the serials of one commit neighbours, so the store's
// serial index grows in one place instead of dirtying a random page per
// certificate (after a wrap, next to the serials of 24.8 days before).
func newSerial(now time.Time) (*big.Int, error) {
	var b [20]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.UnixMilli())&0x7fffffff)
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
