package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PutToken implements Store.
func (b *Bolt) PutToken(ctx context.Context, t *Token) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bTokens)
		if bkt.Get([]byte(t.ID)) != nil {
			return ErrDuplicate
		}
		val, err := json.Marshal(t)
		if err != nil {
			return err
		}
		return bkt.Put([]byte(t.ID), val)
	})
	if err != nil {
		return fmt.Errorf("put token %s: %w", t.ID, err)
	}
	return nil
}

// GetToken implements Store.
func (b *Bolt) GetToken(ctx context.Context, id string) (*Token, error) {
	var t *Token
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = getJSON[Token](tx.Bucket(bTokens), []byte(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get token %s: %w", id, err)
	}
	return t, nil
}

// ListTokens implements Store.
func (b *Bolt) ListTokens(ctx context.Context) ([]*Token, error) {
	var out []*Token
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTokens).ForEach(func(_, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			out = append(out, &t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken implements Store.
func (b *Bolt) DeleteToken(ctx context.Context, id string) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bTokens)
		if bkt.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return bkt.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	return nil
}

// UseToken implements Store.
func (b *Bolt) UseToken(ctx context.Context, id string, at time.Time) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bTokens)
		t, err := getJSON[Token](bkt, []byte(id))
		if err != nil {
			return err
		}
		if !t.UsedAt.IsZero() {
			return ErrStale
		}
		t.UsedAt = at
		val, err := json.Marshal(t)
		if err != nil {
			return err
		}
		return bkt.Put([]byte(id), val)
	})
	if err != nil {
		return fmt.Errorf("use token %s: %w", id, err)
	}
	return nil
}
