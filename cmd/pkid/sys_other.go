//go:build !unix

package main

import (
	"errors"
	"time"
)

// signalPid: signals are Unix's; elsewhere --pid-file cannot be served
// (use --exec).
func signalPid(int, string) error {
	return errors.New("--pid-file: signals exist only on Unix; use --exec")
}

// cpuSelf is unknown here: pkid bench reports no client CPU time.
func cpuSelf() time.Duration { return 0 }

// storeInUse cannot tell here (no flock): restore relies on the admin
// socket alone.
func storeInUse(string) bool { return false }
