package store

import (
	"bytes"
	"encoding/binary"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// revokeSameKey revokes for keyCompromise, at rec's revocation time,
// every other certificate of rec's key that was valid then: whoever holds
// a compromised key must neither use nor renew any certificate for it, and
// a renewal without a new key, or a client that reuses its key, leaves
// several. It reads the state index, whose entries carry each key's tag,
// in the revocation's own transaction (a cursor over small values, ~30 ms
// at a million records: BenchmarkKeyCompromise), and returns those it
// revoked. An index of keys, kept up at every insert, was tried: its
// random pages made BenchmarkInsert/concurrent32 ~40% slower.
func revokeSameKey(tx *bolt.Tx, seq []byte, rec *CertRecord) ([]*CertRecord, error) {
	certs, state := tx.Bucket(bCerts), tx.Bucket(bCertState)
	tag := keyTag(rec.KeyHash)
	// Candidates first: bbolt's cursors are not to be trusted across
	// writes to their bucket.
	var candidates [][]byte
	c := state.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) == stateLen {
			notAfter, _ := stateNotAfter(v)
			if v[12]&stateRevoked != 0 || !notAfter.After(rec.RevokedAt) || binary.BigEndian.Uint64(v[13:]) != tag {
				continue
			}
		}
		// A tag that matches, or an entry without one: the record decides.
		if !bytes.Equal(k, seq) {
			candidates = append(candidates, bytes.Clone(k))
		}
	}
	var out []*CertRecord
	for _, k := range candidates {
		other, err := getCert(certs, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if other.KeyHash != rec.KeyHash || other.Status != StatusValid || !other.NotAfter.After(rec.RevokedAt) {
			continue
		}
		other.Status, other.RevokedAt, other.Reason = StatusRevoked, rec.RevokedAt, "keyCompromise"
		val, err := encodeCert(other)
		if err != nil {
			return nil, err
		}
		if err := certs.Put(k, val); err != nil {
			return nil, err
		}
		if err := putState(tx, k, other); err != nil {
			return nil, err
		}
		if err := indexCRLEntry(tx, certKey(other.Serial), other); err != nil {
			return nil, err
		}
		out = append(out, other)
	}
	return out, nil
}
