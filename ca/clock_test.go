package ca_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// TestRenewWhenDue: nothing happens before the due time on the injected
// clock; after it, a failed renewal is logged and tried again the next
// tick, and a successful one moves the due time.
func TestRenewWhenDue(t *testing.T) {
	clk := ca.NewFakeClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	due := clk.Now().Add(time.Hour)
	calls := 0
	renew := func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return errors.New("store down")
		}
		due = clk.Now().Add(time.Hour)
		return nil
	}
	var logBuf testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ca.RenewWhenDue(ctx, 5*time.Millisecond, clk, func(context.Context) time.Time { mu.Lock(); defer mu.Unlock(); return due }, renew, log, "test artefact")
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return calls }
	time.Sleep(50 * time.Millisecond)
	if n := count(); n != 0 {
		t.Fatalf("renewed %d times before it was due", n)
	}
	clk.Advance(time.Hour)
	deadline := time.Now().Add(testutil.DutyWait)
	for count() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d renewal attempts after it was due, want a failure then a success", count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if n := count(); n != 2 {
		t.Fatalf("%d renewal attempts, want 2 (the due time moved after the success)", n)
	}
	if !strings.Contains(logBuf.String(), "test artefact renewal failed; will retry") || !strings.Contains(logBuf.String(), "store down") {
		t.Fatalf("log: %s", logBuf.String())
	}
}
