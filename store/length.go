package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// errCut is a store file shorter than its meta page says.
var errCut = errors.New("the file is cut short")

// checkLength refuses a store file that ends before its last page: bbolt
// maps pages past the end of a file without complaint, and the first read
// of one is SIGBUS, which kills the process (serve, an admin command,
// pkid backup's check) instead of failing it. A copy cut short (a backup
// restored by hand, a full disk during a copy) is how it happens. The meta
// page, at the file's start, says how far the pages go; a read-only open
// reads only it. A missing or empty file is a new store.
func checkLength(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && info.Size() == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > info.Size() {
			return fmt.Errorf("%w: %d of its %d bytes", errCut, info.Size(), tx.Size())
		}
		return nil
	})
}
