package store

import (
	"bytes"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// decodeCache keeps objects decoded from stored JSON with the exact bytes
// they were decoded from. A read still reads the store every time, so a
// change made by any writer or replica is seen at once; only the decoding
// is skipped when the bytes are the ones decoded before. Tokens (read by
// every REST request) and ACME accounts, orders and authorizations (read
// several times per order) decoded in more time than they took to read.
type decodeCache[T any] struct {
	mu    sync.Mutex
	m     map[string]cachedValue[T]
	clone func(*T) *T // a deep copy: a caller's changes never reach the cache
}

type cachedValue[T any] struct {
	raw []byte
	v   *T
}

// maxCached bounds each cache; past it, the cache starts over.
const maxCached = 4096

// get reads key from bkt and returns a copy of its decoded value, decoding
// only bytes it has not seen for that key; ErrNotFound if key is absent.
func (c *decodeCache[T]) get(bkt *bolt.Bucket, key []byte) (*T, error) {
	raw := bkt.Get(key)
	if raw == nil {
		return nil, ErrNotFound
	}
	c.mu.Lock()
	e, ok := c.m[string(key)]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return c.clone(e.v), nil
	}
	v, err := decodeJSON[T](key, raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[string]cachedValue[T]{}
	}
	// raw is copied: bbolt's bytes live only as long as the transaction.
	c.m[string(key)] = cachedValue[T]{raw: bytes.Clone(raw), v: v}
	c.mu.Unlock()
	return c.clone(v), nil
}
