package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// unrecordedTag starts the CRL list key of a revocation with no record:
// 0xff and the serial's 20 bytes, never a record's 8-byte sequence.
const unrecordedTag = 0xff

// unrecordedKey is the CRL list key (under an issuer's idxKey) of the
// serial whose serialKey is sk, listed without a record.
func unrecordedKey(sk []byte) []byte { return append([]byte{unrecordedTag}, sk...) }

// AddUnrecordedRevocation implements Store.
func (b *Bolt) AddUnrecordedRevocation(ctx context.Context, issuer string, e RevokedEntry) (bool, error) {
	sk, ok := serialKey(e.Serial)
	if !ok || len(e.Reason) > 255 {
		return false, fmt.Errorf("unrecorded revocation of %q: not a serial pkid issues, or a reason too long", e.Serial)
	}
	var added bool
	err := b.write(ctx, func(tx *bolt.Tx) error {
		added = false // fn may run again when its group is retried
		if tx.Bucket(bSerials).Get(sk) != nil {
			return nil
		}
		if v := tx.Bucket(bRevoked).Get(idxKey(issuer, unrecordedKey(sk))); v != nil {
			listed, err := decodeRevoked(v)
			if err != nil {
				return err
			}
			if e.Reason != "keyCompromise" || listed.Reason == e.Reason {
				return nil
			}
			e.RevokedAt = listed.RevokedAt // a raised reason, as UpdateCertificate raises one
		}
		var err error
		added, err = putCRLEntry(tx, issuer, unrecordedKey(sk), e)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("unrecorded revocation of %s: %w", e.Serial, err)
	}
	return added, nil
}

// UnrecordedRevocation implements Store: one read of one key.
func (b *Bolt) UnrecordedRevocation(ctx context.Context, issuer, serial string) (RevokedEntry, error) {
	sk, ok := serialKey(serial)
	if !ok {
		return RevokedEntry{}, ErrNotFound
	}
	var e RevokedEntry
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bRevoked).Get(idxKey(issuer, unrecordedKey(sk)))
		if v == nil {
			return ErrNotFound
		}
		var err error
		e, err = decodeRevoked(v)
		return err
	})
	if err != nil {
		return RevokedEntry{}, fmt.Errorf("unrecorded revocation of %s: %w", serial, err)
	}
	return e, nil
}
