package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backuper is a store that can copy itself whole while it serves. The
// bbolt store is one; a database server (PostgreSQL) has its own backup
// tools and need not be.
type Backuper interface {
	// Backup writes a consistent copy of the store to w: exactly what was
	// committed when it began, while writes go on. It returns the bytes
	// written; ctx ending stops it with an error.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Backup implements Backuper: one read transaction's view written out as a
// bbolt file, which is restored by putting it in place of storage.path
// while pkid is stopped. Writers do not wait for it; pages they free
// meanwhile are reused only once it ends, so the file may grow a little
// during a long copy.
func (b *Bolt) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx, w})
		return err
	})
	if cerr := ctx.Err(); err != nil && cerr != nil {
		err = cerr // bbolt does not wrap the writer's error
	}
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// ctxWriter stops a long copy once its context ends (the client went
// away), instead of holding a read transaction open for nobody.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// CheckBackup opens a backup read-only, runs bbolt's consistency check
// over every page, checks its schema, and counts its certificate records:
// a copy that would not restore is refused before it replaces a good one.
func CheckBackup(path string) (certs int, err error) {
	if err := checkLength(path); err != nil {
		return 0, fmt.Errorf("check backup: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("check backup: %w", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained: Check's goroutine uses tx
			first = cmp.Or(first, err)
		}
		if first != nil {
			return first
		}
		c := tx.Bucket(bCerts)
		if tx.Bucket(bMeta) == nil || c == nil {
			return errors.New("not a pkid store")
		}
		if ver, err := schemaVersion(tx); err != nil || ver < 1 || ver > SchemaVersion {
			return fmt.Errorf("schema version %q", tx.Bucket(bMeta).Get(kVersion))
		}
		certs = c.Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("check backup: %w", err)
	}
	return certs, nil
}
