package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"time"

	"pkid/errs"
	"pkid/store"
)

// NoRecordRetry is the Retry-After of a refusal of a certificate this CA
// signed and holds no record of: how often a renewing client asks again
// while the operator may adopt it.
const NoRecordRetry = 5 * time.Minute

// Authenticate checks a client certificate presented over mTLS: issued by
// this CA (signature and record both match), not revoked, not expired.
func (a *Authority) Authenticate(ctx context.Context, cert *x509.Certificate) (*store.CertRecord, error) {
	if cert == nil {
		return nil, errs.New(errs.Unauthorized, "no client certificate: present a certificate this CA issued (mTLS)")
	}
	// Only a certificate whose exact bytes the CA recorded passes: the
	// record is what the CA signed, so equality proves the certificate is
	// the CA's without verifying its signature again (an ECDSA verify per
	// renewal), and the TLS handshake has proven the client holds its key.
	// The issuer test first answers a foreign certificate clearly; an
	// intermediate retired by a rotation still counts, so its leaves renew
	// into the current one.
	if a.issuedBy(cert) == nil {
		return nil, errs.New(errs.Unauthorized, "the client certificate was not issued by this CA (issuer %q)", cert.Issuer.CommonName)
	}
	rec, err := a.d.Store.GetCertificate(ctx, SerialString(cert.SerialNumber))
	if err != nil || !bytes.Equal(rec.DER, cert.Raw) {
		// Signed by this CA without a record: issued after the backup a
		// restored store came from, most likely. Its operator may adopt
		// it meanwhile, so the refusal says when to ask again, and a
		// renewing client keeps trying rather than giving up for good.
		e := errs.New(errs.Unauthorized, "the client certificate %s has no record at this CA (if its store was restored from a backup, the CA's operator can adopt the certificate: pkid cert adopt)", SerialString(cert.SerialNumber))
		e.RetryAfter = NoRecordRetry
		return nil, e
	}
	now := a.d.Clock.Now()
	if rec.Status == store.StatusRevoked {
		return nil, errs.New(errs.Unauthorized, "the client certificate %s was revoked (%s) at %s", rec.Serial, rec.Reason, rec.RevokedAt.Format(time.RFC3339))
	}
	if now.After(rec.NotAfter) {
		return nil, errs.New(errs.Unauthorized, "the client certificate %s expired at %s; get a new one with a token", rec.Serial, rec.NotAfter.Format(time.RFC3339))
	}
	// A notBefore after now is not refused: pkid dates every certificate a
	// minute before its clock, so this one was signed while that clock ran
	// ahead, since stepped back. Refused, the service it was issued to
	// could neither renew nor revoke it until the clock caught up, and a
	// service whose certificate is not valid yet needs a new one now.
	return rec, nil
}

// Renew issues a successor of cert for exactly the same names and role,
// with a fresh validity from the role as it is now. newCSR, if not nil,
// brings a new key (its names must be the same). A chain of renewals ends
// renewal.max_age after the last real authorization.
func (a *Authority) Renew(ctx context.Context, cert *x509.Certificate, newCSR *x509.CertificateRequest) (*Issued, error) {
	rec, err := a.Authenticate(ctx, cert)
	if err != nil {
		return nil, err
	}
	if rec.Via == store.ViaACME {
		return nil, errs.New(errs.Forbidden, "certificate %s was issued through ACME; renew it through ACME", rec.Serial)
	}
	role := a.Role(rec.Role)
	if role == nil {
		return nil, errs.New(errs.Forbidden, "role %q of certificate %s no longer exists", rec.Role, rec.Serial)
	}
	if !role.Renewal.Enabled {
		return nil, errs.New(errs.Forbidden, "role %q does not allow renewal", rec.Role)
	}
	now := a.d.Clock.Now()
	if deadline := rec.AuthorizedAt.Add(role.Renewal.MaxAge); now.After(deadline) {
		return nil, errs.New(errs.Forbidden, "renewals of this certificate ran out at %s (role %q renewal.max_age %s after the last authorization); get a new certificate with a token", deadline.Format(time.RFC3339), rec.Role, role.Renewal.MaxAge)
	}
	csr := newCSR
	if csr == nil {
		csr = &x509.CertificateRequest{
			Subject: cert.Subject, DNSNames: cert.DNSNames, IPAddresses: cert.IPAddresses,
			URIs: cert.URIs, EmailAddresses: cert.EmailAddresses,
			PublicKey: cert.PublicKey, PublicKeyAlgorithm: cert.PublicKeyAlgorithm,
			RawSubjectPublicKeyInfo: cert.RawSubjectPublicKeyInfo,
		}
	}
	return a.Sign(ctx, &SignRequest{
		Role: rec.Role, CSR: csr, Requester: "mtls:" + rec.Serial, AuthorizedAt: rec.AuthorizedAt, AuthorizedBy: rec.Authorizer(),
		Via: store.ViaRenew, Replaces: rec.Serial, ExactNames: rec.Names,
	})
}
