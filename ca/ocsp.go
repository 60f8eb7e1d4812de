package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // OCSP CertID hashes are SHA-1 by default (RFC 6960)
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"go.step.sm/crypto/x509util"
	"golang.org/x/crypto/ocsp"

	"pkid/store"
)

// ocspValidity is how long a response is good for; responses are re-signed
// at half of it, and at once after a revocation. A response for a
// certificate that expires sooner is good only until the certificate's
// notAfter (see nextUpdate).
const ocspValidity = time.Hour

// oidOCSPNoCheck marks a delegated responder certificate that relying
// parties need not check for revocation (RFC 6960 §4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// OCSPResponder answers RFC 6960 requests for the intermediate's
// certificates. Responses ignore request nonces (RFC 8954), so they are
// cached per serial and signed once per half validity; a revocation drops
// the cached answer. An Ed25519 intermediate answers through a delegated
// ECDSA responder certificate, since x/crypto/ocsp signs only RSA and ECDSA.
type OCSPResponder struct {
	a *Authority

	mu    sync.Mutex
	cache map[string]*ocspEntry
	// gen counts revocations and responder renewals: an answer signed
	// from a store read (or with a responder) taken before one is not
	// cached after it (it would stay "good", or carry the old responder,
	// in the cache for half an hour).
	gen uint64
	// seen is the store's revocation count when the cache was last
	// checked against it (dropIfRevoked).
	seen      atomic.Uint64
	responder atomic.Pointer[responderKey]
	nameHash  map[crypto.Hash][]byte
	keyHash   map[crypto.Hash][]byte
}

// responderKey is what signs responses: the intermediate itself, or a
// delegated responder certificate and its key, renewed at renewAt.
type responderKey struct {
	cert    *x509.Certificate
	signer  crypto.Signer
	renewAt time.Time // zero for the intermediate itself
}

// responderLife is a delegated responder certificate's validity; it is
// renewed at two thirds of it.
const responderLife = 30 * 24 * time.Hour

// OCSPAnswer is a DER response with the times an HTTP cache needs: the
// edge sends them as Last-Modified and Expires, and NextUpdate bounds how
// long a cache may keep it (RFC 5019 §6.2). Both are zero for an error
// status, which is not to be cached.
type OCSPAnswer struct {
	DER                    []byte
	ThisUpdate, NextUpdate time.Time
}

type ocspEntry struct {
	OCSPAnswer
	refresh time.Time
}

// NewOCSPResponder prepares the responder (issuing a delegated responder
// certificate when the intermediate's key cannot sign OCSP).
func NewOCSPResponder(ctx context.Context, a *Authority) (*OCSPResponder, error) {
	o := &OCSPResponder{a: a, cache: map[string]*ocspEntry{}, nameHash: map[crypto.Hash][]byte{}, keyHash: map[crypto.Hash][]byte{}}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(a.d.Intermediate.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("ocsp: %w", err)
	}
	for h, f := range map[crypto.Hash]func() hash.Hash{crypto.SHA1: sha1.New, crypto.SHA256: sha256.New, crypto.SHA384: sha512.New384, crypto.SHA512: sha512.New} {
		hn := f()
		hn.Write(a.d.Intermediate.RawSubject)
		o.nameHash[h] = hn.Sum(nil)
		hk := f()
		hk.Write(spki.PublicKey.RightAlign())
		o.keyHash[h] = hk.Sum(nil)
	}
	o.responder.Store(&responderKey{cert: a.d.Intermediate, signer: a.d.Signer})
	if _, ok := a.d.Signer.Public().(ed25519.PublicKey); ok {
		if err := o.delegate(ctx); err != nil {
			return nil, err
		}
	}
	a.OnRevoke(func(rec *store.CertRecord) { o.forget(rec.Serial) })
	if seq, err := a.d.Store.RevocationSeq(ctx, a.issuerID); err == nil {
		o.seen.Store(seq) // else the first tick drops an empty cache
	}
	return o, nil
}

// delegate issues an ECDSA responder certificate (id-kp-OCSPSigning,
// ocsp-nocheck) and records it like every certificate that leaves the CA.
func (o *OCSPResponder) delegate(ctx context.Context) error {
	key, err := GenerateKey("ec-p256")
	if err != nil {
		return err
	}
	now := o.a.d.Clock.Now().UTC().Truncate(time.Second)
	serial, err := newSerial(o.a.d.Clock.Now())
	if err != nil {
		return err
	}
	nocheck, _ := asn1.Marshal(asn1.NullRawValue)
	ski, err := x509util.GenerateSubjectKeyID(key.Public())
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SubjectKeyId: ski,
		SerialNumber: serial, Subject: pkix.Name{CommonName: o.a.d.Intermediate.Subject.CommonName + " OCSP Responder"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(responderLife),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true, ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: nocheck}},
	}
	if tmpl.NotAfter.After(o.a.d.Intermediate.NotAfter) {
		tmpl.NotAfter = o.a.d.Intermediate.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, o.a.d.Intermediate, key.Public(), o.a.d.Signer)
	if err != nil {
		return fmt.Errorf("ocsp responder certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	rec := &store.CertRecord{Serial: SerialString(serial), Issuer: o.a.issuerID, Role: OCSPRole, Names: []string{tmpl.Subject.CommonName},
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, DER: der, KeyHash: KeyHash(cert.RawSubjectPublicKeyInfo),
		Status: store.StatusValid, Requester: "pkid:ocsp", Via: store.ViaServer, AuthorizedAt: now, CreatedAt: now}
	if err := o.a.d.Store.InsertCertificate(ctx, rec); err != nil {
		return err
	}
	o.responder.Store(&responderKey{cert: cert, signer: key, renewAt: now.Add(cert.NotAfter.Sub(now) * 2 / 3)})
	o.dropCache()
	return nil
}

// dropCache forgets every cached answer, so that the next answers carry
// the new responder certificate at once instead of the old one for up to
// half an hour; bumping gen keeps an answer signed under the old responder
// while it was replaced out of the cache.
func (o *OCSPResponder) dropCache() {
	o.mu.Lock()
	clear(o.cache)
	o.gen++
	o.mu.Unlock()
}

// Responder is the certificate whose key signs responses.
func (o *OCSPResponder) Responder() *x509.Certificate { return o.responder.Load().cert }

// Run does the responder's timer duties every tick until ctx ends: it
// drops cached answers once the store counts a revocation it has not seen,
// and renews a delegated responder certificate at two thirds of its life
// or once it is revoked (retrying on error: a response is valid an hour,
// the old certificate has days left).
func (o *OCSPResponder) Run(ctx context.Context, tick time.Duration) {
	var p retryPacer
	EveryTick(ctx, tick, func(ctx context.Context) {
		o.dropIfRevoked(ctx)
		if !o.responder.Load().renewAt.IsZero() {
			renewIfDue(ctx, o.a.d.Clock, &p, func(ctx context.Context) time.Time {
				cur := o.responder.Load()
				return o.a.ReplaceAt(ctx, cur.cert.SerialNumber, cur.renewAt, "OCSP responder certificate")
			}, o.delegate, o.a.d.Log, "OCSP responder certificate")
		}
	})
}

// dropIfRevoked drops every cached answer when the store's revocation
// count has moved since the last look: the hook that forgets one serial
// runs only in the process that revoked, so a revocation committed by
// another replica (or by the admin command while serve was stopped)
// would otherwise be answered "good" from the cache for up to half an
// hour. Revocations are rare; the answers are signed again on demand.
func (o *OCSPResponder) dropIfRevoked(ctx context.Context) {
	seq, err := o.a.d.Store.RevocationSeq(ctx, o.a.issuerID)
	if err != nil {
		o.a.d.Log.Error("OCSP: revocation count", "err", err)
		return
	}
	if seq != o.seen.Load() {
		o.dropCache()
		o.seen.Store(seq)
	}
}

func cacheKey(h crypto.Hash, serial string) string { return fmt.Sprintf("%02d%s", int(h), serial) }

func (o *OCSPResponder) forget(serial string) {
	o.mu.Lock()
	for h := range o.nameHash {
		delete(o.cache, cacheKey(h, serial))
	}
	o.gen++
	o.mu.Unlock()
}

// cached returns the cached answer for key if it is still fresh at now
// (an entry without der if not), and the revocation generation a new
// answer's store read belongs to.
func (o *OCSPResponder) cached(key string, now time.Time) (ocspEntry, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	// An answer dated after now was signed while the clock was ahead
	// (it has been stepped back since): relying parties would refuse it.
	if e := o.cache[key]; e != nil && now.Before(e.refresh) && !e.ThisUpdate.After(now) {
		return *e, o.gen
	}
	return ocspEntry{}, o.gen
}

// keep caches e for key until e.refresh, unless a revocation came after
// gen.
func (o *OCSPResponder) keep(key string, e ocspEntry, gen uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gen != gen {
		return
	}
	if len(o.cache) > 100000 { // bound memory: drop everything, re-sign on demand
		o.cache = map[string]*ocspEntry{}
	}
	o.cache[key] = &e
}

// Respond answers one DER request; malformed input gets the
// malformedRequest status, a request for another issuer unauthorized.
func (o *OCSPResponder) Respond(ctx context.Context, reqDER []byte) []byte {
	return o.Answer(ctx, reqDER).DER
}

// Answer is Respond with the answer's thisUpdate and nextUpdate.
func (o *OCSPResponder) Answer(ctx context.Context, reqDER []byte) OCSPAnswer {
	req, err := ocsp.ParseRequest(reqDER)
	if err != nil {
		return OCSPAnswer{DER: ocsp.MalformedRequestErrorResponse}
	}
	if !bytes.Equal(o.nameHash[req.HashAlgorithm], req.IssuerNameHash) || !bytes.Equal(o.keyHash[req.HashAlgorithm], req.IssuerKeyHash) {
		return OCSPAnswer{DER: ocsp.UnauthorizedErrorResponse}
	}
	serial := SerialString(req.SerialNumber)
	key := cacheKey(req.HashAlgorithm, serial)
	now := o.a.d.Clock.Now()
	e, gen := o.cached(key, now)
	if e.DER != nil {
		return e.OCSPAnswer
	}
	ans, err := o.sign(ctx, req, serial, now)
	if err != nil {
		o.a.d.Log.Error("ocsp", "serial", serial, "err", err)
		return OCSPAnswer{DER: ocsp.InternalErrorErrorResponse}
	}
	e = ocspEntry{OCSPAnswer: ans, refresh: now.Add(ocspValidity / 2)}
	if ans.NextUpdate.Before(e.refresh) { // the certificate expires first: its next answer has the full hour
		e.refresh = ans.NextUpdate
	}
	o.keep(key, e, gen)
	return ans
}

// sign signs the answer for serial as the store has it at now.
func (o *OCSPResponder) sign(ctx context.Context, req *ocsp.Request, serial string, now time.Time) (OCSPAnswer, error) {
	this := now.UTC().Truncate(time.Minute)
	tmpl := ocsp.Response{
		SerialNumber: new(big.Int).Set(req.SerialNumber), IssuerHash: req.HashAlgorithm,
		ThisUpdate: this, NextUpdate: this.Add(ocspValidity),
		Status: ocsp.Unknown,
	}
	rec, err := o.a.d.Store.GetCertificate(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return OCSPAnswer{}, err
	case rec.Issuer != o.a.issuerID:
	case rec.Status == store.StatusRevoked:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rec.RevokedAt.UTC(), Reasons[rec.Reason]
		tmpl.NextUpdate = nextUpdate(this, now, rec.NotAfter)
	default:
		tmpl.Status = ocsp.Good
		tmpl.NextUpdate = nextUpdate(this, now, rec.NotAfter)
	}
	k := o.responder.Load()
	if k.cert != o.a.d.Intermediate {
		tmpl.Certificate = k.cert
	}
	der, err := ocsp.CreateResponse(o.a.d.Intermediate, k.cert, tmpl, k.signer)
	return OCSPAnswer{DER: der, ThisUpdate: this, NextUpdate: tmpl.NextUpdate}, err
}

// nextUpdate is an answer's nextUpdate for a certificate that expires at
// notAfter: an hour after this, but never after notAfter while the
// certificate is still valid at now. pkid's certificates are short-lived,
// and a server that staples (Caddy, through certmagic) refuses a response
// that outlives its certificate: it neither staples it nor learns from it
// that the certificate was revoked. An expired certificate's answer keeps
// the full hour: nothing staples it, and a nextUpdate at or before now
// would make the answer stale on arrival.
func nextUpdate(this, now, notAfter time.Time) time.Time {
	next := this.Add(ocspValidity)
	if notAfter.After(now) && notAfter.Before(next) {
		return notAfter.UTC()
	}
	return next
}
