package ca

// Prune lets benchmarks in ca_test prune after a scheduled CRL without
// running the publisher's loop.
var Prune = (*CRLPublisher).prune

// HoldKeygen takes every key generation slot until the returned release,
// as a burst of slow RSA keys would.
func (a *Authority) HoldKeygen() (release func()) {
	for range cap(a.keygen) {
		a.keygen <- struct{}{}
	}
	return func() {
		for range cap(a.keygen) {
			<-a.keygen
		}
	}
}

// Pending reports whether a new CRL has been asked for and not yet made.
func (p *CRLPublisher) Pending() bool { return len(p.trigger) > 0 }
