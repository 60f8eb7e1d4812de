package acme

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"

	"pkid/store"
)

// idEncoding is base32hex in lower case: its text sorts like its bytes.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newID names an account, order or authorization in URLs and store keys:
// store.TimePrefix then 96 random bits, 26 characters of [0-9a-v]. The
// random part makes IDs unguessable; the prefix puts the objects of the
// orders in flight on neighbouring store pages.
func newID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint32(b[:4], store.TimePrefix(now))
	rand.Read(b[4:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}
