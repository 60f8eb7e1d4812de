package store

import "math/big"

// NumberValue is the CRL's number; a record whose number does not parse
// (none has been written so) counts as its ThisUpdate in Unix nanoseconds,
// which is what the number was derived from.
func (s *CRLState) NumberValue() *big.Int {
	if n, ok := new(big.Int).SetString(s.Number, 10); ok {
		return n
	}
	return big.NewInt(s.ThisUpdate.UnixNano())
}

// Follows reports whether s is a later CRL than prev: its number is
// greater. Replicas, restores and a clock stepped back make ThisUpdate an
// unreliable order; the number only grows.
func (s *CRLState) Follows(prev *CRLState) bool {
	return s.NumberValue().Cmp(prev.NumberValue()) > 0
}
