package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The certificate state index (bucket cert_state) keeps, under each
// record's sequence, the facts its status depends on — notAfter and
// whether it is revoked — and a tag of its key, in 21 bytes:
//
//	notAfter Unix seconds (8, big-endian) | nanoseconds (4) | flags (1: bit 0 revoked) | key tag (8)
//
// A listing filtered by status reads these instead of decoding every
// record (~1.2 KB of JSON and DER): with short-lived certificates nearly
// every record is expired, and `GET /v1/certs?status=revoked` over a
// million of them took 4.5 s of decoding to find a handful. A
// keyCompromise revocation reads them to find the other certificates of
// its key (revokeSameKey). Schemas 4 and 5 wrote the first 13 bytes only.
const (
	stateLen    = 21
	stateOldLen = 13
)

// stateRevoked is the flag bit of a revoked record.
const stateRevoked = 1

func encodeState(rec *CertRecord) []byte {
	v := make([]byte, stateLen)
	binary.BigEndian.PutUint64(v, uint64(rec.NotAfter.Unix()))
	binary.BigEndian.PutUint32(v[8:], uint32(rec.NotAfter.Nanosecond()))
	if rec.Status == StatusRevoked {
		v[12] = stateRevoked
	}
	binary.BigEndian.PutUint64(v[13:], keyTag(rec.KeyHash))
	return v
}

// keyTag is a 64-bit hash of a record's KeyHash: equal keys have equal
// tags, and a tag that matches is confirmed on the record.
func keyTag(keyHash string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(keyHash))
	return h.Sum64()
}

// stateStatus is EffectiveStatus from a state entry; ok is false for an
// entry it cannot read, which the caller decides by the record itself.
func stateStatus(v []byte, now time.Time) (status string, ok bool) {
	notAfter, ok := stateNotAfter(v)
	if !ok {
		return "", false
	}
	return statusAt(v[12]&stateRevoked != 0, notAfter, now), true
}

// stateNotAfter reads a state entry's notAfter; ok is false for an entry
// it cannot read.
func stateNotAfter(v []byte) (time.Time, bool) {
	if len(v) != stateLen && len(v) != stateOldLen {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint32(v[8:]))), true
}

// putState writes rec's state under seq, in rec's own transaction.
func putState(tx *bolt.Tx, seq []byte, rec *CertRecord) error {
	state := tx.Bucket(bCertState)
	state.FillPercent = appendFill // sequence keys: written at its end
	return state.Put(seq, encodeState(rec))
}

// stateBatch bounds each transaction of the fill: one transaction for a
// million records held 270 MB of heap; a batch holds a fiftieth of that.
var stateBatch = 20_000

// fillCertState fills the state index from the records a store of schema
// 5 or older holds (schema 6 added the key tags; about 6 s per million
// records, once), a batch per transaction. The schema is raised only
// after the last batch, so an interrupted fill starts over at the next
// open; the store's file lock keeps every other writer out meanwhile.
func fillCertState(db *bolt.DB) error {
	var after []byte
	for {
		done := true
		err := db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bCertState); err != nil {
				return err
			}
			c := tx.Bucket(bCerts).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == stateBatch {
					done = false
					break
				}
				rec, err := decodeCert(v)
				if err != nil {
					return fmt.Errorf("record %x: %w", k, err)
				}
				if err := putState(tx, k, rec); err != nil {
					return err
				}
				after = append(after[:0], k...)
				n++
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}
