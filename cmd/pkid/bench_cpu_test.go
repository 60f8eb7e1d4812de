package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestCPUOf reads this process's own times from /proc: user time after a
// busy loop, system time after thousands of syscalls, and together what
// getrusage says within a few clock ticks.
func TestCPUOf(t *testing.T) {
	before, err := cpuOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 150*time.Millisecond; {
		syscall.Getppid()
	}
	after, err := cpuOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.user <= before.user || after.system <= before.system {
		t.Fatalf("times did not advance: before %+v, after %+v", before, after)
	}
	if d := cpuSelf() - (after.user + after.system); d < -30*time.Millisecond || d > 30*time.Millisecond {
		t.Fatalf("/proc says %v, getrusage %v", after.user+after.system, cpuSelf())
	}
	if _, err := cpuOf(1 << 30); err == nil {
		t.Fatal("a process that does not exist has CPU times")
	}
}
