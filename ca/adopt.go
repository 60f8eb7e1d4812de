package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// Adoption is how a certificate came back into the store.
type Adoption struct {
	// Record is the record made for the certificate, or the one the store
	// held already (Already).
	Record  *store.CertRecord
	Already bool
}

// Adopt records der, a certificate this CA signed (with its current
// intermediate or a retired one) that the store has no record of: one
// issued after the backup a store was restored from. Without a record
// the CA cannot list, revoke or renew it, and OCSP answers "unknown", so
// every service whose certificate was renewed since the backup would
// have to enroll again. The operator names its role (a certificate does
// not carry it) and vouches for the certificate by adopting it; the CA
// checks the rest: its signature, that it is an unexpired leaf the role
// as it is now would issue (names, key usages, lifetime), that its key is
// not blocked, and that no CRL entry revokes it (one revoked after the
// backup, listed without a record, is refused and recorded revoked). The record
// dates the last authorization at the certificate's issuance (notBefore
// plus the backdate): for a renewal, whose chain's real one is earlier
// and unknown, its renewals then run out that much later than they would
// have, never earlier. by names the operator who adopted it. viaACME records it as ACME's, whose
// certificates renew through ACME only; otherwise it renews over mTLS as
// a REST certificate does. A certificate recorded already comes back
// with Already set, and nothing written (one recorded revoked is refused).
func (a *Authority) Adopt(ctx context.Context, der []byte, roleName, by string, viaACME bool) (*Adoption, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errs.New(errs.Malformed, "not a certificate: %v", err)
	}
	serial := SerialString(cert.SerialNumber)
	inter := a.issuedBy(cert)
	if inter == nil {
		return nil, errs.New(errs.Forbidden, "certificate %s was issued by %q, not by this CA's intermediate nor a retired one it serves", serial, cert.Issuer.CommonName)
	}
	if err := cert.CheckSignatureFrom(inter); err != nil {
		return nil, errs.New(errs.Forbidden, "certificate %s names this CA's intermediate, but its signature does not verify with that key: %v", serial, err)
	}
	if cert.IsCA {
		return nil, errs.New(errs.Forbidden, "certificate %s is a CA certificate; only leaves are adopted", serial)
	}
	if rec, err := a.d.Store.GetCertificate(ctx, serial); err == nil {
		if !bytes.Equal(rec.DER, cert.Raw) {
			return nil, errs.New(errs.Conflict, "serial %s has a record of another certificate", serial)
		}
		if rec.Status == store.StatusRevoked {
			return nil, errs.New(errs.Forbidden, "certificate %s is recorded as revoked (%s) at %s: it does not renew", serial, rec.Reason, rec.RevokedAt.UTC().Format(time.RFC3339))
		}
		return &Adoption{Record: rec, Already: true}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("adopt %s: %w", serial, err)
	}
	now := a.d.Clock.Now()
	if !now.Before(cert.NotAfter) {
		return nil, errs.New(errs.Forbidden, "certificate %s expired at %s: there is nothing to renew or revoke", serial, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	role := a.Role(roleName)
	if role == nil {
		return nil, errUnknownRole(roleName, a.roles.Load())
	}
	if err := policies.CheckCertificate(role, cert); err != nil {
		return nil, errs.Wrap(errs.Forbidden, err, "certificate %s is not one role %q issues now: %s", serial, roleName, strings.TrimPrefix(err.Error(), fmt.Sprintf("certificate template for role %q: ", roleName)))
	}
	issuer := hex.EncodeToString(inter.SubjectKeyId)
	via := store.ViaAdopted
	if viaACME {
		via = store.ViaACME
	}
	rec := &store.CertRecord{
		Serial: serial, Issuer: issuer, Role: role.Name, Names: (&policies.Decision{DNSNames: cert.DNSNames, IPAddresses: cert.IPAddresses, URIs: cert.URIs, Emails: cert.EmailAddresses}).Names(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, DER: cert.Raw,
		KeyHash: KeyHash(cert.RawSubjectPublicKeyInfo), Status: store.StatusValid,
		Requester: store.ViaAdopted, AuthorizedAt: cert.NotBefore.Add(policies.Backdate), AuthorizedBy: by,
		Via: via, CreatedAt: now.UTC(),
	}
	err = a.d.Store.InsertCertificate(ctx, rec)
	if errors.Is(err, store.ErrListedRevoked) {
		// Revoked after the store's copy was made (or by a CRL put back
		// while this ran), it is listed on the CRL without a record. The
		// store takes its record only revoked, as listed, in that entry's
		// place: OCSP then answers "revoked" rather than "unknown", the
		// entry leaves the CRL after the certificate's notAfter, and a
		// keyCompromise blocks the key again. It does not renew.
		var listed store.RevokedEntry
		if listed, err = a.d.Store.UnrecordedRevocation(ctx, issuer, serial); err != nil {
			return nil, fmt.Errorf("adopt %s: %w", serial, err)
		}
		markRevoked(rec, listed.RevokedAt, listed.Reason)
		err = a.d.Store.InsertCertificate(ctx, rec)
	}
	switch {
	case errors.Is(err, store.ErrKeyBlocked):
		return nil, errs.New(errs.Forbidden, "certificate %s has a key blocked by a keyCompromise revocation: it is not adopted", serial)
	case errors.Is(err, store.ErrDuplicate):
		return nil, errs.New(errs.Conflict, "certificate %s was recorded meanwhile", serial)
	case err != nil:
		return nil, fmt.Errorf("adopt %s: %w", serial, err)
	}
	if rec.Status == store.StatusRevoked {
		var sameKey []*store.CertRecord
		if rec.Reason == "keyCompromise" {
			// Its key's other certificates, as the revocation took them.
			if _, sameKey, err = a.d.Store.UpdateCertificate(ctx, serial, func(*store.CertRecord) error { return nil }); err != nil {
				return nil, fmt.Errorf("adopt %s: revoke the other certificates of its key: %w", serial, err)
			}
		}
		a.revoked.run(rec)
		for _, r := range sameKey {
			a.revoked.run(r)
		}
		return nil, errs.New(errs.Forbidden, "certificate %s was revoked (%s) at %s, after the store's copy was made: recorded as revoked (OCSP answers revoked, the CRL lists it until its notAfter), and it does not renew", serial, rec.Reason, rec.RevokedAt.UTC().Format(time.RFC3339))
	}
	return &Adoption{Record: rec}, nil
}
