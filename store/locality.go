package store

import "time"

// TimePrefix is the clock's milliseconds modulo 2^31: top bit clear,
// wrapping every 24.8 days. Certificate serials and ACME IDs begin with it
// so that what one commit writes is neighbours in bbolt's B+trees: an index
// then grows in one place instead of dirtying a random page per key (after
// a wrap, next to the keys of 24.8 days before). Uniqueness never rests on
// it; the random bits that follow carry that.
func TimePrefix(now time.Time) uint32 { return uint32(now.UnixMilli()) & 0x7fffffff }
