// Package policies is pkid's role model and its evaluator: pure functions with
// no I/O and no clock. Given a Role and a Request it either returns a Decision
// (the exact names, TTL, key usages and EKUs a certificate may carry) or a
// *Rejection listing one precise Reason per refused item, each naming what the
// role would accept.
//
// Nothing the requester sends decides CA-ness, key usage, EKU or validity:
// those come from the role only. CheckCertificate re-checks whatever a
// template produced against the role right before signing.
//
// This package imports nothing else from pkid, so that it can be tested,
// fuzzed and reasoned about alone.
package policies
