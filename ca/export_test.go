package ca

// Prune lets benchmarks in ca_test prune after a scheduled CRL without
// running the publisher's loop.
var Prune = (*CRLPublisher).prune
