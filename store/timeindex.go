package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A time index is a bucket of owner \x00 created (8 bytes, big-endian Unix
// nanoseconds) id -> nil: the objects an owner made, in the order it made
// them, so "how many since" is a seek and a walk over at most the bound,
// however many the owner has. The \x00 keeps an owner whose name extends
// another's (10.0.0.5, 10.0.0.50) out of its count; owners hold no NUL.

// timeKey is the key of the object id that owner made at created.
// Creation times before 1970 (none pkid makes) sort first.
func timeKey(owner string, created time.Time, id string) []byte {
	k := make([]byte, 0, len(owner)+9+len(id))
	k = append(append(k, owner...), 0)
	return append(binary.BigEndian.AppendUint64(k, unixNanos(created)), id...)
}

func unixNanos(t time.Time) uint64 {
	if t.Unix() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// countSince counts, up to max, owner's keys in the time index b made at
// or after since, and says when the first of them was made.
func countSince(b *bolt.Bucket, owner string, since time.Time, max int) (n int, oldest time.Time) {
	prefix := append([]byte(owner), 0)
	start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), unixNanos(since))
	c := b.Cursor()
	for k, _ := c.Seek(start); k != nil && n < max && bytes.HasPrefix(k, prefix) && len(k) >= len(prefix)+8; k, _ = c.Next() {
		if n == 0 {
			oldest = time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))).UTC()
		}
		n++
	}
	return n, oldest
}

// countIndex is countSince in a read transaction of its own, its error
// naming what was counted.
func (b *Bolt) countIndex(bucket []byte, owner string, since time.Time, max int, what string) (int, time.Time, error) {
	var n int
	var oldest time.Time
	err := b.db.View(func(tx *bolt.Tx) error {
		n, oldest = countSince(tx.Bucket(bucket), owner, since, max)
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count %s: %w", what, err)
	}
	return n, oldest, nil
}
