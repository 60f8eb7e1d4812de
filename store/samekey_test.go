package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestSchema6TagsKeys: records written by a schema-5 pkid (state entries
// without key tags) are tagged when the store is opened and raised to
// schema 6, so a keyCompromise revocation reaches them, whether the
// fill's batches divide the records evenly or not; an entry left without
// a tag is decided by its record.
func TestSchema6TagsKeys(t *testing.T) { forStateBatches(t, testSchema6) }

func testSchema6(t *testing.T) {
	ctx := context.Background()
	b, path := openTemp(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	serials := insertSix(t, b, 0x2000, at, func(i int, r *CertRecord) { r.KeyHash = fmt.Sprintf("key%d", i%2) })
	// As schema 5 wrote it (13-byte state entries), then upgraded.
	shortenState(t, b, "5")
	b.Close()
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	b.db.View(func(tx *bolt.Tx) error {
		tx.Bucket(bCertState).ForEach(func(k, v []byte) error {
			if len(v) != stateLen {
				t.Errorf("state of %x after the upgrade: %d bytes, want %d", k, len(v), stateLen)
			}
			return nil
		})
		return nil
	})
	// One entry left short (as an interrupted write could not: the test
	// reaches the fallback): sequences count from 1, so 6 is serials[5].
	shortenState(t, b, "", 6)
	_, sameKey, err := b.UpdateCertificate(ctx, serials[1], func(r *CertRecord) error {
		r.Status, r.RevokedAt, r.Reason = StatusRevoked, at, "keyCompromise"
		return nil
	})
	var got []string
	for _, r := range sameKey {
		got = append(got, r.Serial)
	}
	if want := []string{serials[3], serials[5]}; err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the upgrade a keyCompromise revoked %v (%v), want %v", got, err, want)
	}
}

// shortenState cuts the state entries of seqs (every one if none is
// given) to schema 5's length, and sets the schema version to ver unless
// it is "".
func shortenState(t *testing.T, b *Bolt, ver string, seqs ...uint64) {
	t.Helper()
	if err := b.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bCertState).Cursor()
		var keys [][]byte
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if seqs == nil || slices.Contains(seqs, binary.BigEndian.Uint64(k)) {
				keys = append(keys, bytes.Clone(k))
			}
		}
		for _, k := range keys {
			v := tx.Bucket(bCertState).Get(k)
			if err := tx.Bucket(bCertState).Put(k, bytes.Clone(v[:stateOldLen])); err != nil {
				return err
			}
		}
		if ver == "" {
			return nil
		}
		return tx.Bucket(bMeta).Put(kVersion, []byte(ver))
	}); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeFrom6LeavesCertState: raising a schema-6 store does not
// fill the certificate state index again, which reads every record
// (about 6 s per million here): entries written short, as schema 5 wrote
// them, stay short when the store says 6, and are filled when it says 5.
func TestUpgradeFrom6LeavesCertState(t *testing.T) {
	for _, tc := range []struct {
		ver       string
		wantShort int
	}{{"6", 6}, {"5", 0}} {
		b, path := openTemp(t)
		insertSix(t, b, 0x3000, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), func(int, *CertRecord) {})
		shortenState(t, b, tc.ver)
		b.Close()
		b, err := OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		short := 0
		b.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bCertState).ForEach(func(k, v []byte) error {
				if len(v) == stateOldLen {
					short++
				}
				return nil
			})
		})
		b.Close()
		if short != tc.wantShort {
			t.Fatalf("opened as schema %s: %d state entries left short, want %d", tc.ver, short, tc.wantShort)
		}
	}
}
