package acme

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// idEncoding is base32hex in lower case: its text sorts like its bytes.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newID names an account, order or authorization in URLs and store keys:
// 96 random bits behind 31 bits of the clock (milliseconds modulo 2^31,
// wrapping every 24.8 days), 26 characters of [0-9a-v]. The random part
// makes IDs unguessable; the prefix makes the objects of the orders in
// flight neighbours in the store, so their many small updates share a few
// pages per commit instead of touching one random page each.
func newID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.UnixMilli())&0x7fffffff)
	rand.Read(b[4:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}
