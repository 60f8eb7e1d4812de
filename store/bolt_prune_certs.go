package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneCertificates implements Store. Records are kept in insertion
// order, not by expiry, so it reads on from where its last call stopped
// (in memory: a restart reads from the start again), at most
// pruneScanFactor × max records per call, and wraps at the end: a
// long-lived record never holds back those issued after it, and a call
// costs a bounded read however large the store; deleteFound deletes the
// records found. Revocation
// list entries and blocked keys are left alone: the CRL publisher prunes
// the one, and the other is for ever.
func (b *Bolt) PruneCertificates(ctx context.Context, expiredBefore time.Time, max int) (int, error) {
	due := func(v []byte) bool {
		notAfter, ok := stateNotAfter(v)
		return ok && notAfter.Before(expiredBefore)
	}
	b.pruneMu.Lock()
	defer b.pruneMu.Unlock()
	var seqs [][]byte
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bCertState).Cursor()
		k, v := c.First()
		if b.pruneFrom != nil {
			k, v = c.Seek(b.pruneFrom)
		}
		for read := 0; k != nil && read < pruneScanFactor*max && len(seqs) < max; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			read++
			if due(v) {
				seqs = append(seqs, bytes.Clone(k))
			}
		}
		b.pruneFrom = bytes.Clone(k) // the first record not read; nil at the end
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return 0, wrapPruneCerts(expiredBefore, err)
	}
	n, err := b.deleteFound(ctx, seqs, func(tx *bolt.Tx, seq []byte) (bool, error) {
		certs, serials, byRole, state := tx.Bucket(bCerts), tx.Bucket(bSerials), tx.Bucket(bCertRole), tx.Bucket(bCertState)
		if v := state.Get(seq); v == nil || !due(v) {
			return false, nil
		}
		rec, err := getCert(certs, seq)
		if err != nil {
			return false, err
		}
		if k := certKey(rec.Serial); bytes.Equal(serials.Get(k), seq) {
			if err := serials.Delete(k); err != nil {
				return false, err
			}
		}
		for _, del := range []struct {
			b *bolt.Bucket
			k []byte
		}{{byRole, idxKey(rec.Role, seq)}, {state, seq}, {certs, seq}} {
			if err := del.b.Delete(del.k); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		b.pruneFrom = seqs[0] // read them again next time
		return 0, wrapPruneCerts(expiredBefore, err)
	}
	return n, nil
}

// pruneScanFactor bounds the records one PruneCertificates call reads, as
// a multiple of those it may delete.
const pruneScanFactor = 20

func wrapPruneCerts(before time.Time, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("prune certificates expired before %s: %w", before.UTC().Format(time.RFC3339), err)
}
