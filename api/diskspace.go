package api

import (
	"fmt"
	"path/filepath"

	"pkid/config"
)

// recordBytes is about what one certificate takes in the store (a P-256
// leaf's record and its index entries), for saying how many more fit.
const recordBytes = 1300

// StoreDiskWarnings is DiskWarning for the filesystem that holds cfg's
// store, now: serve logs it at start, /healthz says it while it holds, and
// config check says it beforehand. None where space is not measured.
func StoreDiskWarnings(cfg *config.Config) []string {
	free, err := diskFree(StoreDir(cfg))
	if err != nil {
		return nil
	}
	if w := DiskWarning(free, uint64(cfg.Storage.MinFreeMB)<<20); w != "" {
		return []string{w}
	}
	return nil
}

// StoreDir is the directory that holds cfg's store file, and beside it
// what serve keeps outside the store for a restore (CRL copies, the
// withdrawal journal).
func StoreDir(cfg *config.Config) string {
	return filepath.Dir(cfg.Resolve(cfg.Storage.Path))
}

// DiskWarning is what /healthz says when the store's filesystem has free
// bytes left, fewer than minFree (storage.min_free_mb): a full disk stops
// every issuance, revocation and ACME step, and the warning comes while
// there is time to act. "" when there is room.
func DiskWarning(free, minFree uint64) string {
	if free >= minFree {
		return ""
	}
	return fmt.Sprintf("the store's filesystem has %d MiB free (room for about %d more certificates), less than storage.min_free_mb (%d): when it is full, issuing, revoking and ACME fail; free space, move the store to a larger volume, or set storage.retention",
		free>>20, free/recordBytes, minFree>>20)
}
