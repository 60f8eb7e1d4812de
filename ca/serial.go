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

// newSerial returns the milliseconds since 1970 in 6 octets followed by
// 88 random bits: 17 octets, positive (the time's top bit is clear until
// the year 6429), under RFC 5280's 20. The random part is what matters to
// a serial (CA/B Forum: at least 64 bits from a CSPRNG); the time prefix
// makes serials of one period neighbours, so the store's serial index
// grows at its end instead of dirtying a random page per certificate in
// every commit.
func newSerial(now time.Time) (*big.Int, error) {
	var b [17]byte
	binary.BigEndian.PutUint64(b[:8], uint64(max(now.UnixMilli(), 0))<<16)
	if _, err := rand.Read(b[6:]); err != nil {
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
