package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
		if err := tx.Bucket(bTokenExpiry).Put(expiryKey(t.ExpiresAt, t.ID), nil); err != nil {
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
//
// Every call reads the stored token, so a deleted or spent token is seen at
// once; only the decoding is skipped when the stored bytes are the ones
// decoded before (decodeCache).
func (b *Bolt) GetToken(ctx context.Context, id string) (*Token, error) {
	var t *Token
	err := b.db.View(func(tx *bolt.Tx) (err error) {
		t, err = b.tokens.get(tx.Bucket(bTokens), []byte(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get token %s: %w", id, err)
	}
	return t, nil
}

// clone copies t so a caller's changes never reach the cache.
func (t *Token) clone() *Token {
	c := *t
	c.SecretHash = slices.Clone(t.SecretHash)
	c.Roles = slices.Clone(t.Roles)
	c.Names = slices.Clone(t.Names)
	return &c
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
		t, err := getJSON[Token](tx.Bucket(bTokens), []byte(id))
		if err != nil {
			return err
		}
		if err := tx.Bucket(bTokenExpiry).Delete(expiryKey(t.ExpiresAt, id)); err != nil {
			return err
		}
		return tx.Bucket(bTokens).Delete([]byte(id))
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

// PruneTokens implements Store. Like PruneACME it walks the expiry index
// from its oldest end.
func (b *Bolt) PruneTokens(ctx context.Context, expiredBefore time.Time, max int) (int, error) {
	n, err := b.pruneExpired(ctx, bTokenExpiry, expiredBefore, max, func(tx *bolt.Tx, k, _ []byte) error {
		return tx.Bucket(bTokens).Delete(k[8:])
	})
	if err != nil {
		return 0, fmt.Errorf("prune tokens expired before %s: %w", expiredBefore.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// indexTokenExpiry fills bTokenExpiry from the tokens a schema-4 (or
// older) pkid wrote without it. Tokens are few next to certificates, so
// one transaction holds them.
func indexTokenExpiry(tx *bolt.Tx) error {
	exp := tx.Bucket(bTokenExpiry)
	return tx.Bucket(bTokens).ForEach(func(k, v []byte) error {
		t, err := decodeJSON[Token](k, v)
		if err != nil {
			return err
		}
		return exp.Put(expiryKey(t.ExpiresAt, t.ID), nil)
	})
}
