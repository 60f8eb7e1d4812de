//go:build !linux

package store

// directFlag is 0 where direct I/O is not offered: the runway is written
// through the page cache.
const directFlag = 0
