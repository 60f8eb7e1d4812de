package ca

import (
	"crypto"
	"testing"
	"time"
)

// TestOCSPCacheRevocationRace: an answer signed from a store read taken
// before a revocation is served to its own request but not cached after
// the revocation dropped the serial, so the next request signs afresh.
func TestOCSPCacheRevocationRace(t *testing.T) {
	o := &OCSPResponder{cache: map[string]*ocspEntry{}, nameHash: map[crypto.Hash][]byte{crypto.SHA1: nil}}
	now := time.Now()
	key := cacheKey(crypto.SHA1, "abc")
	_, gen := o.cached(key, now) // a request misses and reads "good"
	o.forget("abc")              // the revocation commits meanwhile
	o.keep(key, ocspEntry{OCSPAnswer: OCSPAnswer{DER: []byte("good")}, refresh: now.Add(ocspValidity / 2)}, gen)
	if e, _ := o.cached(key, now); e.DER != nil {
		t.Fatalf("an answer from before the revocation was cached: %q", e.DER)
	}
	_, gen = o.cached(key, now) // after the revocation: cached as usual
	o.keep(key, ocspEntry{OCSPAnswer: OCSPAnswer{DER: []byte("revoked")}, refresh: now.Add(ocspValidity / 2)}, gen)
	if e, _ := o.cached(key, now); string(e.DER) != "revoked" {
		t.Fatalf("cache after the revocation: %q", e.DER)
	}
	if e, _ := o.cached(key, now.Add(ocspValidity)); e.DER != nil {
		t.Fatal("an answer past its refresh time was served from the cache")
	}
}
