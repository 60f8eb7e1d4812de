package store

import (
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// bbolt grows its file with ftruncate, so the pages a commit appends land
// in a hole: the commit's fdatasync must then allocate blocks and commit
// the filesystem's journal as well as write the data. Measured with pkid
// bench (sign, 32 clients, ext4 on a virtio disk): a commit takes ~1.4 ms
// in a sparse file and ~1.05 ms in one whose tail is written, with ~5%
// more certificates per second and ~4% less CPU per certificate. So the
// commit loop keeps a runway of written zeros just past the last page
// bbolt uses.
const (
	// runwayAhead is how far past bbolt's last page the file is kept
	// written.
	runwayAhead = 8 << 20
	// runwayStep is written at most once per commit: the next commit's
	// fdatasync allocates it in one go.
	runwayStep = 1 << 20
	// directAlign is the alignment O_DIRECT asks of buffers and offsets
	// (bbolt's pages, hence every offset here, are multiples of it).
	directAlign = 4096
)

// runway writes zeros past the end of what bbolt uses. It runs in the
// commit loop, between commits, and holds bbolt's writer lock (a writable
// transaction it rolls back) while it writes: the pages it fills are then
// beyond the last committed page, and no commit can allocate them until
// it is done. Without the lock a write that bypassed the commit loop (the
// upgrades in OpenBolt, a test) could have its new pages, freelist
// included, overwritten with zeros.
//
// Where the filesystem allows it the zeros go straight to the disk
// (O_DIRECT): a buffered 1 MB cost ~2.3 ms of CPU here in page-cache
// work, a direct one ~0.25 ms, and it leaves no dirty pages for bbolt's
// next fdatasync to write out.
type runway struct {
	path    string
	f       *os.File
	direct  bool
	zeros   []byte
	written int64 // zeros are written up to here
	// retryAt is when to try again after a failed write (a full disk):
	// until then the runway stays as it is and leaves the space to bbolt.
	retryAt time.Time
	now     func() time.Time
}

// runwayRetry is how long the runway rests after a failed write. A disk
// that was full gets room again without a restart; the runway then comes
// back with it.
const runwayRetry = time.Minute

func openRunway(path string) *runway {
	r := &runway{path: path, now: time.Now}
	if f, err := os.OpenFile(path, os.O_WRONLY|directFlag, 0); err == nil && directFlag != 0 {
		r.f, r.direct = f, true
		return r
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil // an optimisation only: without it bbolt works as ever
	}
	r.f = f
	return r
}

// extend writes one step of zeros if the written space past bbolt's last
// page is short of runwayAhead.
func (r *runway) extend(db *bolt.DB) {
	if r == nil || (!r.retryAt.IsZero() && r.now().Before(r.retryAt)) {
		return
	}
	// Most commits leave the runway long enough: a read transaction says
	// so without the writer lock, whose rollback re-reads bbolt's
	// freelist. The size that decides where the zeros go is read again
	// under the lock.
	var used int64
	if err := db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil || max(r.written, used)-used >= runwayAhead {
		return
	}
	db.Update(func(tx *bolt.Tx) error {
		r.extendPast(tx.Size())
		return errKeepNothing // roll back: the transaction only held the lock
	})
}

// errKeepNothing rolls back the transaction extend holds the lock with.
var errKeepNothing = errors.New("runway: roll back")

// extendPast is extend's work once bbolt's writer lock is held and used
// is the size of the committed file.
func (r *runway) extendPast(used int64) {
	from := max(r.written, used)
	if from-used >= runwayAhead {
		return
	}
	if r.zeros == nil {
		r.zeros = alignedZeros(runwayStep)
	}
	_, err := r.f.WriteAt(r.zeros, from)
	if err != nil && r.direct && errors.Is(err, syscall.EINVAL) {
		// A filesystem that opens O_DIRECT but refuses the write: go on
		// buffered. (A full disk is not that: it fails buffered too.)
		if f, oerr := os.OpenFile(r.path, os.O_WRONLY, 0); oerr == nil {
			r.f.Close()
			r.f, r.direct = f, false
			_, err = r.f.WriteAt(r.zeros, from)
		}
	}
	if err != nil {
		// A full disk, say: rest, and leave the space to bbolt.
		r.retryAt = r.now().Add(runwayRetry)
		return
	}
	r.retryAt = time.Time{}
	r.written = from + runwayStep
}

// alignedZeros returns n zero bytes starting at a directAlign boundary.
func alignedZeros(n int) []byte {
	b := make([]byte, n+directAlign)
	off := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[off : off+n : off+n]
}

func (r *runway) close() {
	if r != nil {
		r.f.Close()
	}
}
