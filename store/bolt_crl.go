package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// GetCRL implements Store.
func (b *Bolt) GetCRL(ctx context.Context, issuer string) (*CRLState, error) {
	var s *CRLState
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		s, err = getJSON[CRLState](tx.Bucket(bCRLs), []byte(issuer))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get CRL of %s: %w", issuer, err)
	}
	return s, nil
}

// PutCRL implements Store.
func (b *Bolt) PutCRL(ctx context.Context, s *CRLState) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bCRLs)
		old, err := getJSON[CRLState](bkt, []byte(s.Issuer))
		if err == nil && !s.Follows(old) {
			return ErrStale
		}
		val, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return bkt.Put([]byte(s.Issuer), val)
	})
	if err != nil {
		return fmt.Errorf("put CRL of %s: %w", s.Issuer, err)
	}
	return nil
}
