package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
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
//
// Every call reads the stored token, so a deleted or spent token is seen at
// once; only the decoding is skipped when the stored bytes are the ones
// decoded before (tokenCache).
func (b *Bolt) GetToken(ctx context.Context, id string) (*Token, error) {
	var t *Token
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bTokens).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		if t = b.tokens.get(id, v); t != nil {
			return nil
		}
		var dec Token
		if err := json.Unmarshal(v, &dec); err != nil {
			return fmt.Errorf("decode %s: %w", id, err)
		}
		b.tokens.put(id, v, &dec)
		t = dec.clone()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get token %s: %w", id, err)
	}
	return t, nil
}

// tokenCache keeps decoded tokens with the exact bytes they were decoded
// from: every request is authenticated by a token, and decoding its JSON
// cost more than reading it.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	raw []byte
	tok *Token
}

// maxCachedTokens bounds the cache; past it, the cache starts over.
const maxCachedTokens = 4096

// get returns a copy of the token decoded from raw, or nil.
func (c *tokenCache) get(id string, raw []byte) *Token {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		return nil
	}
	return e.tok.clone()
}

// put remembers t as decoded from raw (which is copied: bbolt's bytes live
// only as long as the transaction).
func (c *tokenCache) put(id string, raw []byte, t *Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedTokens {
		c.m = map[string]cachedToken{}
	}
	c.m[id] = cachedToken{raw: bytes.Clone(raw), tok: t}
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
