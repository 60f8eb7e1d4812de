//go:build unix

package testutil

import (
	"syscall"
	"testing"
)

// LimitFileSize makes every file of this process unwritable past n bytes
// (RLIMIT_FSIZE: the Go runtime ignores SIGXFSZ, so such a write fails
// with EFBIG, the way a full disk looks to a process) until the returned
// lift is called, or the test ends. It holds for the whole process: tests
// that use it must not run in parallel with others that write files.
func LimitFileSize(t testing.TB, n uint64) (lift func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lifted := false
	lift = func() {
		if !lifted {
			lifted = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(lift)
	return lift
}
