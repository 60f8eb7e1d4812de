package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bMeta        = []byte("meta")
	bCerts       = []byte("certs")          // insertion sequence (8 bytes BE) -> CertRecord JSON
	bSerials     = []byte("cert_serials")   // padded serial -> sequence
	bCertRole    = []byte("certs_by_role")  // role \x00 key -> nil
	bRevoked     = []byte("revoked")        // issuer \x00 key -> RevokedEntry (see revoked.go)
	bBlocked     = []byte("blocked_keys")   // key hash -> serial
	bCRLs        = []byte("crls")           // issuer -> CRLState JSON
	bTokens      = []byte("tokens")         // id -> Token JSON
	bCertState   = []byte("cert_state")     // sequence -> notAfter and revoked (see certstate.go)
	bTokenExpiry = []byte("token_expiry")   // expires (8 bytes BE Unix seconds) id -> nil, for PruneTokens
	kVersion     = []byte("schema_version") // in meta
)

var allBuckets = [][]byte{bMeta, bCerts, bSerials, bCertRole, bRevoked, bBlocked, bCRLs, bTokens, bCertState, bTokenExpiry,
	bAccounts, bAccountKeys, bOrders, bOrdersByAcct, bAuthzs, bAuthzsByAcct, bEAB, bACMEExpiry, bReplacements,
	bAllowances, bAllowanceExpiry, bUnfinished, bAccountSources}

// appendFill is the split threshold of buckets written at their end.
const appendFill = 0.9

// Bolt is the embedded Store: one bbolt file, one process.
type Bolt struct {
	db     *bolt.DB
	writes chan *writeReq
	// closing guards sends against Close: once closed is set, no write
	// can enter the queue, and the loop drains what is in it.
	closing sync.RWMutex
	closed  bool
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	linger  time.Duration
	// Decoded objects, each kept with the bytes it came from (decodeCache).
	tokens   decodeCache[Token]
	accounts decodeCache[ACMEAccount]
	orders   decodeCache[ACMEOrder]
	authzs   decodeCache[ACMEAuthz]
	runway   *runway
	// failure is the last commit's failure, nil once one succeeds.
	failure atomic.Pointer[commitFailure]
	// pruneFrom is where PruneCertificates reads on (nil: from the start).
	pruneMu   sync.Mutex
	pruneFrom []byte
}

// commitFailure is when a commit failed, and why.
type commitFailure struct {
	at  time.Time
	err error
}

// WriteFailure implements Store.
func (b *Bolt) WriteFailure() (time.Time, error) {
	if f := b.failure.Load(); f != nil {
		return f.at, f.err
	}
	return time.Time{}, nil
}

// mmapReserve is the address space bbolt maps up front (not memory: only
// the pages read are resident). bbolt must remap to grow past its mapping,
// and a remap waits for every read transaction to end: with the default
// mapping, a backup or a long listing held a commit, and so issuance, for
// as long as it read. 64 GB holds some 40 million certificates.
var mmapReserve = int(min(64<<30, int64(math.MaxInt)))

// errDamaged marks a store file bbolt could not open because a page it
// reads at open is not what the file's meta page says it is.
var errDamaged = errors.New("the file is damaged")

// openDB is bolt.Open, with the panic bbolt raises on a damaged file (a
// freelist page overwritten with zeros, say) returned as an error, so
// serve and the CLI say what is wrong instead of printing a stack trace.
// bbolt keeps the file open and locked after such a panic; the caller
// gives up on the store, and the process ends soon after.
func openDB(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w (bbolt: %v)", errDamaged, p)
		}
	}()
	return bolt.Open(path, 0o600, o)
}

// OpenBolt opens (creating if needed) the bbolt store at path. A second
// process gets an error after one second instead of blocking forever on the
// file lock.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	switch err := checkLength(path); {
	case errors.Is(err, errCut):
		return nil, fmt.Errorf("open store %s: %w (restored from an incomplete copy?)", path, err)
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s (is another pkid using it?): %w", path, err)
	}
	db, err := openDB(path, &bolt.Options{Timeout: time.Second, InitialMmapSize: mmapReserve})
	if err != nil && !errors.Is(err, bolterrors.ErrTimeout) && !errors.Is(err, errDamaged) {
		// Address space refused (a ulimit -v, a 32-bit build): map as
		// bbolt does by default, and live with remaps.
		db, err = openDB(path, &bolt.Options{Timeout: time.Second})
	}
	if errors.Is(err, errDamaged) {
		return nil, fmt.Errorf("open store %s: %w; restore the store from a backup (pkid backup writes one)", path, err)
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s (is another pkid using it?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := upgradeInBatches(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		ver, err := schemaVersion(tx)
		if err != nil || ver > SchemaVersion {
			return fmt.Errorf("schema version %q is newer than this pkid understands (%d)", tx.Bucket(bMeta).Get(kVersion), SchemaVersion)
		}
		if ver == SchemaVersion {
			return nil
		}
		// Raised before anything in the newer form is written, so an
		// older pkid refuses the file rather than misreading it.
		if ver > 0 && ver < 3 {
			if err := indexACMEExpiry(tx); err != nil {
				return fmt.Errorf("schema 3: index ACME expiry: %w", err)
			}
		}
		if ver > 0 && ver < 5 {
			if err := indexTokenExpiry(tx); err != nil {
				return fmt.Errorf("schema 5: index token expiry: %w", err)
			}
		}
		if ver > 0 && ver < 7 {
			if err := indexUnfinished(tx); err != nil {
				return fmt.Errorf("schema 7: index unfinished orders: %w", err)
			}
		}
		return tx.Bucket(bMeta).Put(kVersion, fmt.Appendf(nil, "%d", SchemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	b := &Bolt{db: db, writes: make(chan *writeReq, maxGroup), stop: make(chan struct{}), done: make(chan struct{}), linger: lingerFromEnv(), runway: openRunway(path),
		tokens: decodeCache[Token]{clone: (*Token).clone}, accounts: decodeCache[ACMEAccount]{clone: (*ACMEAccount).clone},
		orders: decodeCache[ACMEOrder]{clone: (*ACMEOrder).clone}, authzs: decodeCache[ACMEAuthz]{clone: (*ACMEAuthz).clone}}
	go b.commitLoop()
	return b, nil
}

// upgradeInBatches does, before the transaction that raises the schema,
// the part of an upgrade too large for one transaction: schema 4's state
// index (schema 6 adds each key's tag to it).
func upgradeInBatches(db *bolt.DB) error {
	var ver int
	if err := db.View(func(tx *bolt.Tx) (err error) {
		ver, err = schemaVersion(tx)
		return err
	}); err != nil || ver == 0 || ver >= 6 {
		return nil // new, filled already, or refused by the raise that follows
	}
	if err := fillCertState(db); err != nil {
		return fmt.Errorf("schema 6: index certificate state: %w", err)
	}
	return nil
}

// schemaVersion is the store's schema version, 0 for a new store that has
// none yet; an error for a value that is not a number.
func schemaVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bMeta)
	if meta == nil || meta.Get(kVersion) == nil {
		return 0, nil
	}
	var ver int
	if _, err := fmt.Sscan(string(meta.Get(kVersion)), &ver); err != nil {
		return 0, fmt.Errorf("schema version %q: %w", meta.Get(kVersion), err)
	}
	return ver, nil
}

// certKey is a serial as its 20-octet big-endian integer (RFC 5280's
// maximum): half the size of its hex text, which keeps the serial index,
// the one structure with random insertion points, small.
// Text that is no serial a record can have gets a key no record has.
func certKey(serial string) []byte {
	if k, ok := serialKey(serial); ok {
		return k
	}
	return []byte("invalid:" + serial)
}

// serialKey is certKey for a serial a certificate may carry (positive
// hex, at most 160 bits), or false.
func serialKey(serial string) ([]byte, bool) {
	n, ok := new(big.Int).SetString(serial, 16)
	if !ok || n.Sign() <= 0 || n.BitLen() > 160 {
		return nil, false
	}
	return n.FillBytes(make([]byte, 20)), true
}

func idxKey(prefix string, key []byte) []byte {
	return append(append([]byte(prefix), 0), key...)
}

var errClosed = errors.New("store is closed")

// InsertCertificate commits the record through the shared commit loop;
// ErrDuplicate if the serial exists.
func (b *Bolt) InsertCertificate(ctx context.Context, rec *CertRecord) error {
	val, err := encodeCert(rec)
	if err != nil {
		return fmt.Errorf("insert %s: %w", rec.Serial, err)
	}
	err = b.write(ctx, func(tx *bolt.Tx) error {
		certs, serials, byRole := tx.Bucket(bCerts), tx.Bucket(bSerials), tx.Bucket(bCertRole)
		// All three grow at their end (sequence keys; the CA's serials
		// start with the time), so pages that split are packed full rather
		// than left half empty: half the file and fewer pages per commit.
		certs.FillPercent, serials.FillPercent, byRole.FillPercent = appendFill, appendFill, appendFill
		k := certKey(rec.Serial)
		if serials.Get(k) != nil {
			return ErrDuplicate
		}
		// A serial listed revoked without a record (a CRL put back after
		// a restore) gets a record only as revoked, which takes the
		// entry's place on the CRL: a valid one beside it would answer
		// OCSP and renew as if the revocation had not been. This comes
		// first, so that the caller learns to insert it revoked.
		if u := idxKey(rec.Issuer, unrecordedKey(k)); tx.Bucket(bRevoked).Get(u) != nil {
			if rec.Status != StatusRevoked {
				return ErrListedRevoked
			}
			if err := tx.Bucket(bRevoked).Delete(u); err != nil {
				return err
			}
		}
		if rec.KeyHash != "" && rec.Status != StatusRevoked && tx.Bucket(bBlocked).Get([]byte(rec.KeyHash)) != nil {
			return ErrKeyBlocked
		}
		if rec.Replaces != "" {
			if err := markReplaced(certs, serials.Get(certKey(rec.Replaces)), rec); err != nil {
				return err
			}
		}
		// Records are appended in insertion order, so a commit dirties the
		// tail pages only; the small serial index takes the random keys.
		n, err := certs.NextSequence()
		if err != nil {
			return err
		}
		seq := binary.BigEndian.AppendUint64(nil, n)
		if err := certs.Put(seq, val); err != nil {
			return err
		}
		if err := serials.Put(k, seq); err != nil {
			return err
		}
		if err := byRole.Put(idxKey(rec.Role, seq), nil); err != nil {
			return err
		}
		if err := putState(tx, seq, rec); err != nil {
			return err
		}
		// A record inserted revoked (an import, a test) is listed and
		// blocks its key; it revokes no other.
		return indexRevocation(tx, k, rec)
	})
	if err != nil {
		return fmt.Errorf("insert %s: %w", rec.Serial, err)
	}
	return nil
}

func getJSON[T any](bkt *bolt.Bucket, key []byte) (*T, error) {
	v := bkt.Get(key)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeJSON[T](key, v)
}

// decodeJSON decodes the value stored under key.
func decodeJSON[T any](key, raw []byte) (*T, error) {
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return &out, nil
}

// GetCertificate implements Store.
func (b *Bolt) GetCertificate(_ context.Context, serial string) (*CertRecord, error) {
	var rec *CertRecord
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		seq := tx.Bucket(bSerials).Get(certKey(serial))
		if seq == nil {
			return ErrNotFound
		}
		rec, err = getCert(tx.Bucket(bCerts), seq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get certificate %s: %w", serial, err)
	}
	return rec, nil
}

// listScanBudget bounds the whole records one ListCertificates call reads
// (about 50 ms of scanning; the compact status index a status filter reads
// first does not count): a filter that matches few records, a name above
// all, ends its page there with fewer records than asked for, or none,
// and a cursor to read on from.
var listScanBudget = 50_000

// ListCertificates implements Store.
func (b *Bolt) ListCertificates(_ context.Context, f ListFilter) ([]*CertRecord, string, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var out []*CertRecord
	next := ""
	err := b.db.View(func(tx *bolt.Tx) error {
		// Listing follows insertion order (oldest first): the records
		// bucket itself, or the role index whose keys end in the sequence.
		certs, state := tx.Bucket(bCerts), tx.Bucket(bCertState)
		c := certs.Cursor()
		overRecords := f.Status == "" && f.Role == "" // v is the record itself
		if f.Status != "" {
			// Same keys, 13-byte values: a status filter reads the state
			// of each record, and decodes only those it lists.
			c = state.Cursor()
		}
		var prefix []byte
		if f.Role != "" {
			c = tx.Bucket(bCertRole).Cursor()
			prefix = idxKey(f.Role, nil)
		}
		start := prefix
		if f.Cursor != "" {
			after, err := hex.DecodeString(f.Cursor)
			if err != nil || len(after) != 8 {
				return fmt.Errorf("cursor %q: %w", f.Cursor, ErrNotFound)
			}
			start = append(append([]byte{}, prefix...), after...)
		}
		k, v := c.Seek(start)
		if f.Cursor != "" && k != nil && bytes.Equal(k, start) {
			k, v = c.Next()
		}
		// A name or requester filter scans: a record whose stored bytes
		// lack the name (or requester) as JSON writes it (both are JSON in
		// both stored forms) is passed over without being decoded.
		var quoted, quotedReq []byte
		if f.Name != "" {
			quoted, _ = json.Marshal(f.Name)
		}
		if f.Requester != "" {
			quotedReq, _ = json.Marshal(f.Requester)
		}
		var lastSeq, readSeq []byte
		read := 0
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			seq := k[len(prefix):]
			if f.Status != "" {
				if f.Role != "" {
					v = state.Get(seq)
				}
				if st, ok := stateStatus(v, f.Now); ok && st != f.Status {
					continue
				}
			}
			if read == listScanBudget {
				// Enough for one read transaction (a long one holds up
				// the file's growth, and with it every commit): the page
				// ends here, and the next reads on after the last record
				// looked at.
				next = hex.EncodeToString(readSeq)
				return nil
			}
			read, readSeq = read+1, seq
			raw := v
			if !overRecords {
				raw = certs.Get(seq)
			}
			if quoted != nil && !bytes.Contains(raw, quoted) || quotedReq != nil && !bytes.Contains(raw, quotedReq) {
				continue
			}
			rec, err := decodeCertAt(seq, raw)
			if err != nil {
				return err
			}
			if f.Status != "" && EffectiveStatus(rec, f.Now) != f.Status {
				continue
			}
			if f.Name != "" && !slices.Contains(rec.Names, f.Name) || f.Requester != "" && rec.Requester != f.Requester && rec.AuthorizedBy != f.Requester {
				continue
			}
			if len(out) == limit {
				next = hex.EncodeToString(lastSeq)
				return nil
			}
			out = append(out, rec)
			lastSeq = append(lastSeq[:0], seq...)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list certificates: %w", err)
	}
	return out, next, nil
}

// EffectiveStatus is the status a client sees: revoked wins, then expired.
func EffectiveStatus(rec *CertRecord, now time.Time) string {
	return statusAt(rec.Status == StatusRevoked, rec.NotAfter, now)
}

func statusAt(revoked bool, notAfter, now time.Time) string {
	if revoked {
		return StatusRevoked
	}
	if !now.IsZero() && now.After(notAfter) {
		return "expired"
	}
	return StatusValid
}

// UpdateCertificate implements Store.
func (b *Bolt) UpdateCertificate(ctx context.Context, serial string, fn func(*CertRecord) error) (*CertRecord, []*CertRecord, error) {
	var rec *CertRecord
	var sameKey []*CertRecord
	err := b.write(ctx, func(tx *bolt.Tx) error {
		sameKey = nil
		certs := tx.Bucket(bCerts)
		k := certKey(serial)
		seq := tx.Bucket(bSerials).Get(k)
		if seq == nil {
			return ErrNotFound
		}
		var err error
		rec, err = getCert(certs, seq)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		val, err := encodeCert(rec)
		if err != nil {
			return err
		}
		if err := certs.Put(seq, val); err != nil {
			return err
		}
		if err := putState(tx, seq, rec); err != nil {
			return err
		}
		if err := indexRevocation(tx, k, rec); err != nil {
			return err
		}
		if rec.blocksKey() {
			sameKey, err = revokeSameKey(tx, seq, rec)
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("update certificate %s: %w", serial, err)
	}
	return rec, sameKey, nil
}

// markReplaced records rec as the replacement of the record at seq (nil
// when that record is unknown: nothing to mark), in rec's own insert.
func markReplaced(certs *bolt.Bucket, seq []byte, rec *CertRecord) error {
	if seq == nil {
		return nil
	}
	prev, err := getCert(certs, seq)
	if err != nil {
		return err
	}
	// A renewal's only authority is the certificate it renews; an ACME
	// replacement was validated afresh, and replacing a revoked
	// certificate is what ARI asks of it.
	if rec.Via == ViaRenew && prev.Status == StatusRevoked {
		return ErrReplacedRevoked
	}
	if prev.ReplacedBy != "" {
		return nil
	}
	prev.ReplacedBy = rec.Serial
	val, err := encodeCert(prev)
	if err != nil {
		return err
	}
	return certs.Put(seq, val)
}

// indexRevocation keeps the CRL and blocked-key indexes in step with a
// record, in the record's own transaction.
func indexRevocation(tx *bolt.Tx, k []byte, rec *CertRecord) error {
	if err := indexCRLEntry(tx, k, rec); err != nil {
		return err
	}
	if rec.blocksKey() {
		return tx.Bucket(bBlocked).Put([]byte(rec.KeyHash), []byte(rec.Serial))
	}
	return nil
}

// blocksKey reports whether rec's revocation blocks its key (and takes
// the key's other certificates with it, when it is an update).
func (r *CertRecord) blocksKey() bool {
	return r.Status == StatusRevoked && r.Reason == "keyCompromise" && r.KeyHash != ""
}

// indexCRLEntry keeps the issuer's CRL list in step with a record and
// counts each change to it (RevocationSeq).
func indexCRLEntry(tx *bolt.Tx, k []byte, rec *CertRecord) error {
	if rec.Status != StatusRevoked {
		return nil
	}
	_, err := putCRLEntry(tx, rec.Issuer, k, RevokedEntry{Serial: rec.Serial, RevokedAt: rec.RevokedAt, Reason: rec.Reason, NotAfter: rec.NotAfter})
	return err
}

// putCRLEntry writes e under issuer's CRL list key k and counts the change
// (RevocationSeq), unless k holds e already; it reports whether it wrote.
func putCRLEntry(tx *bolt.Tx, issuer string, k []byte, e RevokedEntry) (bool, error) {
	v := encodeRevoked(e)
	revoked := tx.Bucket(bRevoked)
	if bytes.Equal(revoked.Get(idxKey(issuer, k)), v) {
		return false, nil
	}
	if err := revoked.Put(idxKey(issuer, k), v); err != nil {
		return false, err
	}
	meta, key := tx.Bucket(bMeta), revSeqKey(issuer)
	return true, meta.Put(key, binary.BigEndian.AppendUint64(nil, readSeq(meta.Get(key))+1))
}

// revSeqKey is an issuer's revocation count in the meta bucket.
func revSeqKey(issuer string) []byte { return []byte("revocation_seq\x00" + issuer) }

func readSeq(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// RevocationSeq implements Store.
func (b *Bolt) RevocationSeq(_ context.Context, issuer string) (uint64, error) {
	var n uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		n = readSeq(tx.Bucket(bMeta).Get(revSeqKey(issuer)))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revocation count of %s: %w", issuer, err)
	}
	return n, nil
}

// ListRevoked implements Store.
func (b *Bolt) ListRevoked(_ context.Context, issuer string) ([]RevokedEntry, error) {
	var out []RevokedEntry
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRevoked).Cursor()
		prefix := idxKey(issuer, nil)
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeRevoked(v)
			if err != nil {
				return fmt.Errorf("entry %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list revoked of %s: %w", issuer, err)
	}
	return out, nil
}

// KeyBlocked implements Store.
func (b *Bolt) KeyBlocked(_ context.Context, keyHash string) (bool, error) {
	var blocked bool
	err := b.db.View(func(tx *bolt.Tx) error {
		blocked = tx.Bucket(bBlocked).Get([]byte(keyHash)) != nil
		return nil
	})
	return blocked, err
}

// Check runs bbolt's consistency check; tests call it before closing. It
// runs in the commit loop's transaction: bbolt's check reads the shared
// freelist, which a writable transaction beginning meanwhile (the
// runway's, after each commit) changes.
func (b *Bolt) Check() error {
	return b.write(context.Background(), func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained: Check's goroutine uses tx
			first = cmp.Or(first, err)
		}
		return first
	})
}

// Close stops the commit loop (committing and answering every write
// queued) and closes the file.
func (b *Bolt) Close() error {
	b.once.Do(func() {
		b.closing.Lock()
		b.closed = true
		b.closing.Unlock()
		close(b.stop)
	})
	<-b.done
	b.runway.close()
	return b.db.Close()
}
