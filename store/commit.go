package store

import (
	"context"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// This file is the store's only writer: the commit loop and its grouping.

// maxGroup bounds how many inserts share one commit, so one commit never
// grows without limit under a burst.
const maxGroup = 512

// writeReq is one write waiting for the commit loop.
type writeReq struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// write runs fn in the next shared commit and returns after the commit is
// durable (or fn failed). fn may run more than once — when another write
// in its group fails, the group is rolled back and run again without it —
// so it must re-read whatever it changes, inside the transaction.
func (b *Bolt) write(ctx context.Context, fn func(*bolt.Tx) error) error {
	req := &writeReq{fn: fn, err: make(chan error, 1)}
	b.closing.RLock()
	if b.closed {
		b.closing.RUnlock()
		return errClosed
	}
	select {
	case b.writes <- req:
		b.closing.RUnlock()
	case <-ctx.Done():
		b.closing.RUnlock()
		return ctx.Err()
	}
	// Once taken, the request is always answered: wait for the outcome even
	// if ctx ends, so the caller never mistakes a committed write for a
	// failure.
	return <-req.err
}

// commitLoop is the store's only writer: it commits every write waiting at
// that moment in one transaction (group commit: one pair of fsyncs for many
// certificates and ACME updates, and no added delay for a lone caller).
func (b *Bolt) commitLoop() {
	defer close(b.done)
	lastGroup := 0
	for {
		var first *writeReq
		select {
		case first = <-b.writes:
		case <-b.stop:
			// No write can enter any more: commit what is queued.
			for len(b.writes) > 0 {
				group := []*writeReq{}
				for len(b.writes) > 0 && len(group) < maxGroup {
					group = append(group, <-b.writes)
				}
				b.commitGroup(group)
			}
			return
		}
		group := []*writeReq{first}
		// Under load, give concurrent writers a moment to join this commit:
		// a bbolt commit (two fsyncs) costs the same for one write as for
		// many. The wait ends as soon as as many writes are queued as the
		// last commit held, and a lone caller never waits.
		if b.linger > 0 && lastGroup > 1 {
			deadline := time.Now().Add(b.linger)
			for len(b.writes) < lastGroup-1 && time.Now().Before(deadline) {
				time.Sleep(lingerStep)
			}
		}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-b.writes:
				group = append(group, r)
			default:
				break drain
			}
		}
		lastGroup = len(group)
		b.commitGroup(group)
		b.runway.extend(b.db)
	}
}

func (b *Bolt) commitGroup(group []*writeReq) {
	// A write that fails may have failed on what another write of this
	// group did (a key index entry, a used token): its answer waits until
	// the group's commit, so that whoever it lost to is visible by then.
	type refusal struct {
		r   *writeReq
		err error
	}
	var refused []refusal
	defer func() {
		for _, f := range refused {
			f.r.err <- f.err
		}
	}()
	for len(group) > 0 {
		tx, err := b.db.Begin(true)
		if err != nil {
			b.noteCommit(err)
			for _, r := range group {
				r.err <- err
			}
			return
		}
		failed, ferr := -1, error(nil)
		for i, r := range group {
			if err := safeCall(r.fn, tx); err != nil {
				failed, ferr = i, err
				break
			}
		}
		if failed >= 0 {
			tx.Rollback()
			refused = append(refused, refusal{group[failed], ferr})
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		err = tx.Commit()
		b.noteCommit(err)
		for _, r := range group {
			r.err <- err
		}
		return
	}
}

// noteCommit keeps a failed commit for WriteFailure until one succeeds.
func (b *Bolt) noteCommit(err error) {
	if err != nil {
		b.failure.Store(&commitFailure{at: time.Now(), err: err})
	} else if b.failure.Load() != nil {
		b.failure.Store(nil)
	}
}

// safeCall turns a panic in a write into that write's error, so one bad
// write cannot stop the store's only writer.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store write panicked: %v", p)
		}
	}()
	return fn(tx)
}

// defaultLinger bounds how long the commit loop waits for company once the
// previous commit was shared; the wait ends early when as many writes are
// queued as the last commit held. Measured with pkid bench at 32 clients on
// 2 cores (sign certs/s, ACME orders/s): 2 ms → 3,815 and 565; 4 ms →
// 3,970 and 596; 6 ms → 4,371 and 637; 8 ms → 3,725 and 597; 12 ms → 3,593
// and 516 (runs vary by ±5% on this shared machine).
const defaultLinger = 6 * time.Millisecond

// lingerStep is how often a lingering commit loop looks at its queue.
const lingerStep = 200 * time.Microsecond

// lingerFromEnv reads PKID_COMMIT_LINGER (a Go duration, "0" to disable).
func lingerFromEnv() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PKID_COMMIT_LINGER")); err == nil {
		return d
	}
	return defaultLinger
}
