package store

import (
	"encoding/binary"
	"errors"
	"time"
)

// The CRL index is read whole for every CRL (100,000 entries and more), so
// its entries use a compact binary form rather than JSON, which made
// decoding a third of CRL generation:
//
//	0x01 | len(serial) | serial (hex text) | revokedAt ns (8) | notAfter ns (8) | len(reason) | reason
const revokedV1 = 0x01

func encodeRevoked(e RevokedEntry) []byte {
	b := make([]byte, 0, 1+1+len(e.Serial)+16+1+len(e.Reason))
	b = append(b, revokedV1, byte(len(e.Serial)))
	b = append(b, e.Serial...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.RevokedAt.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.NotAfter.UnixNano()))
	b = append(b, byte(len(e.Reason)))
	return append(b, e.Reason...)
}

var errBadEntry = errors.New("malformed revocation entry")

func decodeRevoked(b []byte) (RevokedEntry, error) {
	var e RevokedEntry
	if len(b) < 2 || b[0] != revokedV1 {
		return e, errBadEntry
	}
	n := int(b[1])
	b = b[2:]
	if len(b) < n+17 {
		return e, errBadEntry
	}
	e.Serial = string(b[:n])
	b = b[n:]
	e.RevokedAt = time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
	e.NotAfter = time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))).UTC()
	r := int(b[16])
	if len(b) < 17+r {
		return e, errBadEntry
	}
	e.Reason = string(b[17 : 17+r])
	return e, nil
}
