package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pkid/policies"
	"pkid/store"
)

// CRLPublisher keeps the intermediate's CRL current: it re-signs soon after
// revocations (coalescing bursts) and on schedule at half the validity, so
// a CRL is always replaced well before its nextUpdate. Every CRL is stored
// before it is served, and its number is thisUpdate in Unix nanoseconds,
// or one more than the last when this clock is behind it, so it only grows
// across restarts, restores, replicas and clock steps.
type CRLPublisher struct {
	a        *Authority
	validity time.Duration
	// Coalesce is how long a revocation waits for others before re-signing.
	Coalesce time.Duration
	// Tick is how often the schedule is checked against the clock.
	Tick time.Duration
	// Published, if set, is given each CRL once it is stored, in order:
	// serve keeps a copy outside the store, which puts back the
	// revocations a store restored from a backup lost.
	Published func(*store.CRLState)
	log       *slog.Logger

	mu      sync.RWMutex
	current *store.CRLState
	trigger chan struct{}
}

// NewCRLPublisher makes a publisher for a's intermediate; call Run.
func NewCRLPublisher(a *Authority, validity time.Duration, log *slog.Logger) *CRLPublisher {
	p := &CRLPublisher{a: a, validity: validity, Coalesce: 100 * time.Millisecond, Tick: time.Second, log: log, trigger: make(chan struct{}, 1)}
	p.Follow(a)
	return p
}

// Follow triggers a new CRL soon after each revocation through revoker of
// a certificate of this publisher's intermediate. A publisher follows its
// own authority; a retired intermediate's, which revokes nothing itself,
// follows the current one's too.
func (p *CRLPublisher) Follow(revoker *Authority) {
	revoker.OnRevoke(func(rec *store.CertRecord) {
		if strings.EqualFold(rec.Issuer, p.a.issuerID) {
			p.Trigger()
		}
	})
}

// Trigger asks for a new CRL soon.
func (p *CRLPublisher) Trigger() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Current returns the latest CRL, loading or generating one if needed.
func (p *CRLPublisher) Current(ctx context.Context) (*store.CRLState, error) {
	p.mu.RLock()
	cur := p.current
	p.mu.RUnlock()
	if cur != nil {
		return cur, nil
	}
	return p.ensure(ctx)
}

// ensure loads the stored CRL or makes the first one.
func (p *CRLPublisher) ensure(ctx context.Context) (*store.CRLState, error) {
	st, err := p.a.d.Store.GetCRL(ctx, p.a.issuerID)
	if errors.Is(err, store.ErrNotFound) {
		return p.Generate(ctx, true)
	}
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.current == nil || st.Follows(p.current) {
		p.current = st
	}
	cur := p.current
	p.mu.Unlock()
	return cur, nil
}

// Run regenerates on triggers and on schedule until ctx ends. Every tick
// it also compares the store's revocation count with the one the current
// CRL covered, so a revocation committed anywhere (another replica, the
// admin command while serve was stopped) or one whose CRL failed to
// commit (a full disk) is on the CRL within a tick of the store allowing
// it, not half a validity later. What is due is read from the store: no
// replica needs another's memory.
func (p *CRLPublisher) Run(ctx context.Context) {
	if _, err := p.ensure(ctx); err != nil {
		p.log.Error("initial CRL", "err", err)
	}
	tick := time.NewTicker(p.Tick)
	defer tick.Stop()
	failing := false // only so the log says it once, and once more when mended
	var pruning sync.WaitGroup
	defer pruning.Wait()
	var busy atomic.Bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.trigger:
			select {
			case <-time.After(p.Coalesce):
			case <-ctx.Done():
				return
			}
			failing = p.afterRevocation(ctx, failing)
		case <-tick.C:
			cur, err := p.Current(ctx)
			if err != nil {
				p.log.Error("CRL schedule", "err", err)
				continue
			}
			seq, err := p.a.d.Store.RevocationSeq(ctx, p.a.issuerID)
			if err != nil {
				p.log.Error("CRL schedule: revocation count", "err", err)
				continue
			}
			if seq > cur.RevocationSeq {
				failing = p.afterRevocation(ctx, failing)
				continue
			}
			now := p.a.d.Clock.Now()
			if cur.ThisUpdate.After(now.Add(policies.Backdate)) {
				// Signed while this clock was ahead; it has been stepped back.
				p.log.Warn("the CRL is dated after this clock's reading: the clock was ahead when it was signed; signing it again", "issuer", p.a.issuerID, "this_update", cur.ThisUpdate, "clock", now.UTC())
				failing = p.afterRevocation(ctx, failing)
				continue
			}
			if !now.Before(cur.ThisUpdate.Add(p.validity / 2)) {
				st, err := p.Generate(ctx, true)
				if err != nil {
					p.log.Error("scheduled CRL", "err", err)
					continue
				}
				// In the background: an old store's first prune may take
				// seconds, and revocations must reach the CRL meanwhile.
				if busy.CompareAndSwap(false, true) {
					pruning.Go(func() {
						defer busy.Store(false)
						p.prune(ctx, st.LastScheduled)
					})
				}
			}
		}
	}
}

// afterRevocation makes the CRL revocations asked for and reports whether
// it failed; it logs when it first fails and when it is made again.
func (p *CRLPublisher) afterRevocation(ctx context.Context, failing bool) bool {
	_, err := p.Generate(ctx, false)
	switch {
	case err != nil && !failing:
		p.log.Error("CRL after revocation failed; trying again every tick", "err", err)
	case err == nil && failing:
		p.log.Info("CRL after revocation made")
	}
	return err != nil
}

// pruneBatch bounds each pruning transaction, so issuance queued behind
// it waits for a thousand deletions at most.
const pruneBatch = 1000

// prune drops from the store's CRL list the entries that CRLs after the
// scheduled one made at will skip (the same test as Generate's), so the
// list read for each CRL holds what is on it rather than every revocation
// ever made. Run calls it after each scheduled CRL. A failure is only
// logged: the entries stay in the list, and skipped, until the next
// scheduled CRL prunes them.
func (p *CRLPublisher) prune(ctx context.Context, at time.Time) {
	PruneInBatches(ctx, p.log, "expired entries of the CRL list", pruneBatch, func(max int) (int, error) {
		return p.a.d.Store.PruneRevoked(ctx, p.a.issuerID, at, at.Add(-p.validity/2), max)
	}, "issuer", p.a.issuerID)
}

// Generate signs and stores a new CRL. scheduled marks a periodic CRL,
// after which entries that expired before it may be dropped next time.
func (p *CRLPublisher) Generate(ctx context.Context, scheduled bool) (*store.CRLState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, err := p.a.d.Store.GetCRL(ctx, p.a.issuerID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	now := p.a.d.Clock.Now().UTC()
	number := big.NewInt(now.UnixNano())
	var lastScheduled time.Time
	if prev != nil {
		lastScheduled = prev.LastScheduled
		// The number must grow even if this clock is behind the one that
		// signed the previous CRL (a replica, a restored backup, or this
		// clock stepped back after running ahead). thisUpdate stays this
		// clock's: dated after the previous one it would be in the future,
		// and relying parties refuse a CRL that is not yet valid.
		if prevNumber := prev.NumberValue(); number.Cmp(prevNumber) <= 0 {
			number = prevNumber.Add(prevNumber, big.NewInt(1))
		}
		// A scheduled CRL dated after now has not yet been made, as far
		// as this clock knows: the entries it would let go stay.
		if lastScheduled.After(now) {
			lastScheduled = now
		}
	}
	// The count first: every change it counts is in the list read after.
	seq, err := p.a.d.Store.RevocationSeq(ctx, p.a.issuerID)
	if err != nil {
		return nil, err
	}
	revoked, err := p.a.d.Store.ListRevoked(ctx, p.a.issuerID)
	if err != nil {
		return nil, err
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, e := range revoked {
		// An entry goes once a scheduled CRL made after its notAfter has
		// listed it. That CRL listed it only if the revocation had
		// committed when it read the store, and a revocation in the last
		// moments of a certificate's life may commit just after a
		// scheduled CRL's read: so that CRL must also be half a validity
		// after the revocation, long past any commit.
		if !lastScheduled.IsZero() && lastScheduled.After(e.NotAfter) && lastScheduled.Sub(e.RevokedAt) > p.validity/2 {
			continue
		}
		sn, ok := new(big.Int).SetString(e.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("CRL: bad serial %q in store", e.Serial)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: e.RevokedAt.UTC(), ReasonCode: Reasons[e.Reason]})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now,
		NextUpdate:                now.Add(p.validity),
		RevokedCertificateEntries: entries,
	}, p.a.d.Intermediate, p.a.d.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign CRL: %w", err)
	}
	st := &store.CRLState{Issuer: p.a.issuerID, Number: number.String(), ThisUpdate: now, NextUpdate: now.Add(p.validity), DER: der, LastScheduled: lastScheduled, RevocationSeq: seq}
	if scheduled {
		// Entries are let go by it (and pruned from the store's list), so
		// it is dated by the clock that deletes nothing early.
		st.LastScheduled = now
		if steady := p.a.d.Steady.Now().UTC(); steady.Before(now) {
			st.LastScheduled = steady
		}
	}
	if err := p.a.d.Store.PutCRL(ctx, st); err != nil {
		return nil, err
	}
	p.current = st
	if p.Published != nil {
		p.Published(st)
	}
	p.log.Info("CRL published", "issuer", p.a.issuerID, "number", st.Number, "entries", len(entries), "scheduled", scheduled)
	return st, nil
}
