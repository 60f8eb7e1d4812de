package ca

// Prune lets benchmarks in ca_test prune after a scheduled CRL without
// running the publisher's loop.
var Prune = (*CRLPublisher).prune

// Pending reports whether a new CRL has been asked for and not yet made.
func (p *CRLPublisher) Pending() bool { return len(p.trigger) > 0 }
