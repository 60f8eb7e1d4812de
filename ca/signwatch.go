package ca

import (
	"crypto"
	"io"
	"sync/atomic"
	"time"
)

// watchedSigner is the intermediate's key as an Authority uses it: it
// notes when a signature fails, and forgets it once one works again, so
// /healthz can say why issuance, CRLs and OCSP fail (a key in an HSM can
// become unreachable while pkid runs).
type watchedSigner struct {
	crypto.Signer
	now    func() time.Time
	failed atomic.Pointer[signFailure]
}

type signFailure struct {
	at  time.Time
	err error
}

// Sign implements crypto.Signer.
func (w *watchedSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := w.Signer.Sign(rand, digest, opts)
	if err != nil {
		w.failed.Store(&signFailure{at: w.now(), err: err})
		return nil, err
	}
	if w.failed.Load() != nil {
		w.failed.Store(nil)
	}
	return sig, nil
}

// SignFailure is when the intermediate's key last failed to sign and why,
// or a nil error if it has signed since (or never failed).
func (a *Authority) SignFailure() (time.Time, error) {
	if f := a.signer.failed.Load(); f != nil {
		return f.at, f.err
	}
	return time.Time{}, nil
}
