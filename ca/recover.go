package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"pkid/errs"
	"pkid/store"
)

// Reapplied is what ReapplyCRL found on one CRL and did with it.
type Reapplied struct {
	// Issuer is the ID of the intermediate, current or retired, that
	// signed the CRL; Number and ThisUpdate are the CRL's own.
	Issuer     string
	Number     *big.Int
	ThisUpdate time.Time
	// Entries counts the CRL's entries.
	Entries int
	// Revoked are the records revoked again: the store held them valid.
	Revoked []*store.CertRecord
	// Raised are the records the store held revoked for a lesser reason
	// than the CRL's keyCompromise, now raised to it.
	Raised []*store.CertRecord
	// SameKey are the other certificates of a keyCompromise key that were
	// still valid, revoked with them; SameKeyAs maps each one's serial to
	// the serial whose revocation took it.
	SameKey   []*store.CertRecord
	SameKeyAs map[string]string
	// Already counts the entries the store held revoked, or listed, as
	// the CRL does.
	Already int
	// Unrecorded are the serials the store holds no record of
	// (certificates issued after the store's copy was made), now listed
	// on the issuer's CRL again without one: until the intermediate
	// expires, since their notAfter is not known. OCSP answers "unknown"
	// for them, and GET /v1/certs 404.
	Unrecorded []store.RevokedEntry
}

// errAsListed ends an update that would change nothing: the record is
// already revoked as the CRL lists it.
var errAsListed = errors.New("already revoked as listed")

// ReapplyCRL puts back into the store every revocation that der, a CRL
// this CA signed (with its current intermediate or a retired one), lists
// and the store no longer holds: after a store is restored from a backup,
// the revocations made since are gone from it, and the next CRL would
// leave them out, so that relying parties would trust those certificates
// again. A CRL survives elsewhere (a relying party's copy, an HTTP cache),
// and, signed by this CA, it is proof enough: a revocation is never
// undone. Each entry keeps the CRL's revocation time and reason (its
// keyCompromise revokes the key's other certificates and blocks the key,
// as a revocation does); a serial the store has no record of is listed
// on the CRL without one. A CRL that is older than the store's, or
// applied twice, changes nothing. der must verify against one of this
// CA's intermediates; the root's CRL lists intermediates, which the store
// does not hold, and is refused too.
func (a *Authority) ReapplyCRL(ctx context.Context, der []byte) (*Reapplied, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, errs.New(errs.Malformed, "not a CRL: %v", err)
	}
	return a.ReapplyRevocationList(ctx, rl)
}

// ReapplyRevocationList is ReapplyCRL for a CRL already parsed (serve's
// CRL copy, whose number it read first).
func (a *Authority) ReapplyRevocationList(ctx context.Context, rl *x509.RevocationList) (*Reapplied, error) {
	inter, err := a.crlSigner(rl)
	if err != nil {
		return nil, err
	}
	out := &Reapplied{Issuer: hex.EncodeToString(inter.SubjectKeyId), Number: rl.Number, ThisUpdate: rl.ThisUpdate, Entries: len(rl.RevokedCertificateEntries), SameKeyAs: map[string]string{}}
	var todo []store.RevokedEntry
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber == nil || e.SerialNumber.Sign() <= 0 {
			continue // never signed by pkid, which draws positive serials
		}
		reason := ReasonName(e.ReasonCode)
		if reason == "" {
			reason = "unspecified" // a code pkid does not use: still revoked
		}
		todo = append(todo, store.RevokedEntry{Serial: SerialString(e.SerialNumber), RevokedAt: e.RevocationTime.UTC(), Reason: reason, NotAfter: inter.NotAfter})
	}
	// Entries for a lesser reason than keyCompromise touch their own
	// record only, so they are put back several at once: the store's
	// group commit then shares one commit among them, where one at a time
	// a CRL of 100,000 entries would cost 100,000 commits before serve
	// starts after a restore. keyCompromise entries follow, one at a time
	// in the CRL's order: each revokes its key's other certificates, which
	// other entries may name, and revoking those first keeps the reasons
	// the CRL lists for them. The outcomes are reported in the CRL's order.
	done := make([]reapplied, len(todo))
	var lesser, compromised []int
	for i, e := range todo {
		if e.Reason == "keyCompromise" {
			compromised = append(compromised, i)
		} else {
			lesser = append(lesser, i)
		}
	}
	err = a.reapplyEntries(ctx, out.Issuer, todo, lesser, done, reapplyWorkers)
	if err == nil {
		err = a.reapplyEntries(ctx, out.Issuer, todo, compromised, done, 1)
	}
	for i, d := range done {
		switch {
		case d.already:
			out.Already++
		case d.unrecorded:
			out.Unrecorded = append(out.Unrecorded, todo[i])
		case d.rec == nil: // not reached: an error stopped the run
		case d.raised:
			out.Raised = append(out.Raised, d.rec)
		default:
			out.Revoked = append(out.Revoked, d.rec)
		}
		for _, r := range d.sameKey {
			out.SameKey = append(out.SameKey, r)
			out.SameKeyAs[r.Serial] = d.rec.Serial
		}
	}
	if err != nil {
		return out, fmt.Errorf("reapply CRL %s of %s: %w", rl.Number, out.Issuer, err)
	}
	return out, nil
}

// reapplyEntries puts back the entries todo[i] for each i in which, on
// workers goroutines, into done[i], and stops at the first error.
func (a *Authority) reapplyEntries(ctx context.Context, issuer string, todo []store.RevokedEntry, which []int, done []reapplied, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(which)) {
		wg.Go(func() {
			for i := range next {
				if err := a.reapplyEntry(ctx, issuer, todo[i], &done[i]); err != nil {
					cancel(fmt.Errorf("serial %s: %w", todo[i].Serial, err))
				}
			}
		})
	}
feed:
	for _, i := range which {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// reapplyWorkers is how many of a CRL's entries for lesser reasons than
// keyCompromise ReapplyRevocationList puts back at once: enough to fill
// the store's commits.
const reapplyWorkers = 64

// reapplied is what ReapplyRevocationList did with one entry.
type reapplied struct {
	// already: the store held it revoked, or listed, as the CRL does;
	// unrecorded: it is now listed without a record.
	already, unrecorded bool
	// rec is the record revoked again, or raised to keyCompromise
	// (raised), and sameKey the key's other certificates revoked with it.
	rec     *store.CertRecord
	raised  bool
	sameKey []*store.CertRecord
}

// reapplyEntry puts e, one entry of issuer's CRL, back into the store and
// says what it did in d. An entry the store holds as listed is found by
// a read, without a commit. A record that appears between the read and
// the write (`pkid cert adopt` of the same certificate) is revoked as a
// record: the store lists no entry beside a record, so the record would
// otherwise stay valid.
func (a *Authority) reapplyEntry(ctx context.Context, issuer string, e store.RevokedEntry, d *reapplied) error {
	for range 3 {
		cur, err := a.d.Store.GetCertificate(ctx, e.Serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if done, err := a.listUnrecorded(ctx, issuer, e, d); done || err != nil {
				return err
			}
			continue // recorded since the read
		case err != nil:
			return err
		}
		probe := *cur // markRevoked sets only fields of the record itself
		if changed, _ := markRevoked(&probe, e.RevokedAt, e.Reason); !changed {
			d.already = true
			return nil
		}
		var raised bool
		rec, sameKey, err := a.d.Store.UpdateCertificate(ctx, e.Serial, func(r *store.CertRecord) error {
			// raised is set on every run: fn runs again when its commit
			// is retried.
			var changed bool
			if changed, raised = markRevoked(r, e.RevokedAt, e.Reason); !changed {
				return errAsListed
			}
			return nil
		})
		switch {
		case errors.Is(err, store.ErrNotFound): // pruned since the read
			continue
		case errors.Is(err, errAsListed): // revoked since the read
			d.already = true
			return nil
		case err != nil:
			return err
		}
		d.rec, d.raised, d.sameKey = rec, raised, sameKey
		a.revoked.run(rec)
		for _, r := range sameKey {
			a.revoked.run(r)
		}
		return nil
	}
	return errors.New("its record appeared and went again while the entry was put back; run it again")
}

// listUnrecorded lists e, a revocation of a serial the store holds no
// record of, on issuer's CRL, and says so in d. The publishers are told
// as of a revocation, with a record that holds only the entry. done is
// false when the store holds a record of the serial after all (made since
// the caller looked): the caller revokes that instead.
func (a *Authority) listUnrecorded(ctx context.Context, issuer string, e store.RevokedEntry, d *reapplied) (done bool, err error) {
	added, err := a.d.Store.AddUnrecordedRevocation(ctx, issuer, e)
	if err != nil {
		return false, err
	}
	if !added {
		// Listed already, or recorded since the caller's read.
		if _, err := a.d.Store.GetCertificate(ctx, e.Serial); err == nil {
			return false, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		d.already = true
		return true, nil
	}
	d.unrecorded = true
	a.revoked.run(&store.CertRecord{Serial: e.Serial, Issuer: issuer, Status: store.StatusRevoked, RevokedAt: e.RevokedAt, Reason: e.Reason, NotAfter: e.NotAfter})
	return true, nil
}

// crlSigner is the intermediate of this CA, current or retired, that
// signed rl, or an error saying whose CRL rl is instead.
func (a *Authority) crlSigner(rl *x509.RevocationList) (*x509.Certificate, error) {
	aki := hex.EncodeToString(rl.AuthorityKeyId)
	if bytes.Equal(rl.AuthorityKeyId, a.d.Root.SubjectKeyId) {
		return nil, errs.New(errs.Forbidden, "CRL %s is the root's: it lists intermediates, not certificates the store holds", rl.Number)
	}
	inter := a.retired[aki]
	if inter == nil {
		inter = a.d.Intermediate
	}
	if !bytes.Equal(rl.RawIssuer, inter.RawSubject) || !bytes.Equal(rl.AuthorityKeyId, inter.SubjectKeyId) {
		return nil, errs.New(errs.Forbidden, "CRL %s was issued by %q (key %s), not by this CA's intermediate %s nor a retired one this CA serves", rl.Number, rl.Issuer, aki, a.issuerID)
	}
	if err := rl.CheckSignatureFrom(inter); err != nil {
		return nil, errs.New(errs.Forbidden, "CRL %s names intermediate %s, but its signature does not verify with that key: %v", rl.Number, aki, err)
	}
	return inter, nil
}
